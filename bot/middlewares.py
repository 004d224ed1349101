"""Per-update middlewares: the database for this update, who the user is and which language they read, and rate
limits by handler flag."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from bot.texts import language_for, t
from storage.cache import RateLimiter
from storage.db import DATABASE_DOWN, UnitOfWork

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DatabaseMiddleware(BaseMiddleware):
    """Hands handlers `uow`: `async with uow() as repo:` is one transaction. Handlers and flows never see the pool,
    and open a transaction only around what must commit together (a photo's answer takes seconds of inference,
    which no transaction should span)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["uow"] = self._uow
        return await handler(event, data)


class UserLanguageMiddleware(BaseMiddleware):
    """Records first/last seen and hands handlers `lang`; a database outage falls back to Telegram's."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            data["lang"] = language_for(None, None)
            return await handler(event, data)
        explicit = None
        uow: UnitOfWork = data["uow"]
        try:
            async with uow() as repo:
                explicit = (await repo.users.touch(user.id, user.language_code)).language
        except DATABASE_DOWN as exc:
            logger.warning("user not recorded: database unavailable (%s)", type(exc).__name__)
        data["lang"] = language_for(explicit, user.language_code)
        return await handler(event, data)


class RateLimitMiddleware(BaseMiddleware):
    """Handlers flagged `rate_limit="<key>"` get at most N calls per user per minute (messages and buttons that
    start expensive work, e.g. "more for me", share the budget of the same key). While Redis is away the limiter
    allows (storage.cache decides): a hiccup must not lock people out."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        key = get_flag(data, "rate_limit")
        user: User | None = data.get("event_from_user")
        if key is None or user is None or not isinstance(event, Message | CallbackQuery):
            return await handler(event, data)
        decision = await self._limiter.hit(user.id, key)
        if not decision.allowed:
            text = t(data["lang"], "rate_limited", seconds=decision.retry_after)
            if isinstance(event, CallbackQuery):
                await event.answer(text, show_alert=True)
            else:
                await event.answer(text)
            return None
        return await handler(event, data)
