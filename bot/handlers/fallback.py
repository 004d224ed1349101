"""Anything else (text, voice, files we don't handle) gets a hint about what the bot does."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot.texts import t


async def anything_else(message: Message, lang: str) -> None:
    await message.answer(t(lang, "send_photo"))


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="fallback")
    router.message.register(anything_else)
    return router
