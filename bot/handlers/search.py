"""Search by words (/search <words>, or any plain text message) and by colour (/color <hex | name>)."""

from __future__ import annotations

import random

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.chat import Chat
from bot.services import Services
from storage.db import UnitOfWork

_rng = random.SystemRandom()


def _chat(message: Message, bot: Bot, lang: str) -> Chat:
    assert message.from_user is not None
    return Chat(bot, message.chat.id, message.from_user.id, lang, reply_to=message.message_id)


async def search(
    message: Message, command: CommandObject, bot: Bot, lang: str, services: Services, uow: UnitOfWork
) -> None:
    await services.searches.words(_chat(message, bot, lang), command.args or "", uow, _rng)


async def words(message: Message, bot: Bot, lang: str, services: Services, uow: UnitOfWork) -> None:
    await services.searches.words(_chat(message, bot, lang), message.text or "", uow, _rng)


async def colour(
    message: Message, command: CommandObject, bot: Bot, lang: str, services: Services, uow: UnitOfWork
) -> None:
    await services.searches.colour(_chat(message, bot, lang), command.args or "", uow)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only). Plain text is any text that is
    not a command: an unknown command still gets the fallback's hint."""
    router = Router(name="search")
    router.message.register(search, Command("search"), flags={"rate_limit": "search"})
    router.message.register(colour, Command("color", "colour"), flags={"rate_limit": "search"})
    router.message.register(words, F.text, ~F.text.startswith("/"), flags={"rate_limit": "search"})
    return router
