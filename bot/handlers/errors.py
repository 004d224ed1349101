"""Where unexpected errors land: logged with a traceback, the user gets an apology, the bot stays up."""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from bot.texts import language_for, t

logger = logging.getLogger(__name__)


async def on_error(event: ErrorEvent, bot: Bot) -> bool:
    logger.exception("unhandled error in update %s", event.update.update_id, exc_info=event.exception)
    message = event.update.message or (event.update.callback_query and event.update.callback_query.message)
    user = event.update.message.from_user if event.update.message else None
    if event.update.callback_query is not None:
        user = event.update.callback_query.from_user
    lang = language_for(None, user.language_code if user else None)
    if message is not None and message.chat is not None:
        try:
            await bot.send_message(message.chat.id, t(lang, "error"))
        except TelegramAPIError:
            logger.warning("could not apologise to chat %s", message.chat.id)
    return True


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
