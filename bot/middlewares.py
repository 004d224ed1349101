"""Per-update middlewares: who the user is and which language they read; rate limits by handler flag."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.types import CallbackQuery, Message, TelegramObject, User

from bot.texts import language_for, t
from feedback.recorder import DATABASE_DOWN
from storage.cache import RateLimiter
from storage.repositories import Repo

logger = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UserLanguageMiddleware(BaseMiddleware):
    """Records first/last seen and hands handlers `lang`; a database outage falls back to Telegram's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None:
            data["lang"] = language_for(None, None)
            return await handler(event, data)
        explicit = None
        try:
            async with self._pool.acquire(timeout=5) as conn:
                row = await Repo(conn).users.touch(user.id, user.language_code)
            explicit = row.language
        except DATABASE_DOWN as exc:
            logger.warning("user not recorded: database unavailable (%s)", type(exc).__name__)
        data["lang"] = language_for(explicit, user.language_code)
        return await handler(event, data)


class RateLimitMiddleware(BaseMiddleware):
    """Handlers flagged `rate_limit="<key>"` get at most N calls per user per minute (messages and buttons that
    start expensive work, e.g. "more for me", share the budget of the same key)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        key = get_flag(data, "rate_limit")
        user: User | None = data.get("event_from_user")
        if key is None or user is None or not isinstance(event, Message | CallbackQuery):
            return await handler(event, data)
        try:
            decision = await self._limiter.hit(user.id, key)
        except Exception:  # a Redis hiccup must not lock people out
            logger.warning("rate limiter unavailable", exc_info=True)
            return await handler(event, data)
        if not decision.allowed:
            text = t(data["lang"], "rate_limited", seconds=decision.retry_after)
            if isinstance(event, CallbackQuery):
                await event.answer(text, show_alert=True)
            else:
                await event.answer(text)
            return None
        return await handler(event, data)
