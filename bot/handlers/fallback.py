"""What no other handler took: an unknown command gets a hint about what the bot does (plain text is a search,
handlers/search.py), anything else (a voice message, an
audio, a location, a contact, a poll, …) a note on what it takes; button presses whose data matches no
button of ours (malformed, out of range, from an old release, forged) get the polite refusal, so no button keeps
spinning. Both are checked before any database call."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot.texts import t

logger = logging.getLogger(__name__)


async def anything_else(message: Message, lang: str) -> None:
    await message.answer(t(lang, "unknown_command" if message.text is not None else "what_i_take"))


async def unknown_button(query: CallbackQuery, lang: str) -> None:
    logger.info("refused callback data of %d bytes from user %s", len(query.data or ""), query.from_user.id)
    await query.answer(t(lang, "forged"), show_alert=True)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="fallback")
    router.message.register(anything_else)
    router.callback_query.register(unknown_button)
    return router
