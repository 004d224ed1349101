"""Where unexpected errors land: logged with a traceback, the user gets an apology (a pressed button its answer,
so it stops spinning), the bot stays up."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from bot.texts import language_for, t

logger = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    logger.exception("unhandled error in update %s", event.update.update_id, exc_info=event.exception)
    update = event.update
    query = update.callback_query
    user = query.from_user if query is not None else (update.message.from_user if update.message else None)
    lang = language_for(None, user.language_code if user else None)
    try:
        if query is not None:
            await bot.answer_callback_query(query.id, t(lang, "error"), show_alert=True)
        elif update.message is not None:
            await bot.send_message(update.message.chat.id, t(lang, "error"))
    except TelegramAPIError:
        logger.warning("could not apologise for update %s", update.update_id)
    return True


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
