"""/start, /help and /lang."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.callbacks import LanguageCallback
from bot.keyboards import language_keyboard
from bot.texts import t
from storage.db import DATABASE_DOWN, UnitOfWork


async def start(message: Message, lang: str) -> None:
    await message.answer(t(lang, "start"))


async def help_(message: Message, lang: str) -> None:
    await message.answer(t(lang, "help"))


async def choose_language(message: Message, lang: str) -> None:
    await message.answer(t(lang, "choose_language"), reply_markup=language_keyboard())


async def set_language(query: CallbackQuery, callback_data: LanguageCallback, bot: Bot, uow: UnitOfWork) -> None:
    try:
        async with uow() as repo:
            await repo.users.set_language(query.from_user.id, callback_data.code)
    except DATABASE_DOWN:
        await query.answer(t(callback_data.code, "error"), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        await bot.send_message(query.message.chat.id, t(callback_data.code, "language_set"))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="start")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    router.message.register(choose_language, Command("lang"))
    router.callback_query.register(set_language, LanguageCallback.filter(F.code.in_({"en", "ru"})))
    return router
