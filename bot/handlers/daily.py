"""/daily: opt in to one work picked for you every day at your hour, opt out, or see when the next one comes.

The subscription is only stored here; bot/daily_sender.py sends the picks.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.daily_schedule import DailyCommand, format_offset, local_time, parse_daily
from bot.services import Services
from bot.texts import t
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import DailySubscription

logger = logging.getLogger(__name__)


def describe(lang: str, key: str, sub: DailySubscription) -> str:
    """`daily_on` / `daily_status_on` filled in on the user's clock."""
    return t(
        lang,
        key,
        time=f"{sub.hour:02d}:00",
        offset=format_offset(sub.utc_offset_minutes),
        next=local_time(sub.next_run_at, sub.utc_offset_minutes),
    )


async def _apply(uow: UnitOfWork, user_id: int, command: DailyCommand, lang: str) -> str:
    async with uow() as repo:
        daily = repo.daily
        if command.action == "on":
            sub = await daily.subscribe(user_id, command.hour, command.utc_offset_minutes, datetime.now(UTC))
            return describe(lang, "daily_on", sub)
        if command.action == "off":
            await daily.unsubscribe(user_id)
            return t(lang, "daily_off")
        sub_or_none = await daily.get(user_id)
    status = t(lang, "daily_status_off") if sub_or_none is None else describe(lang, "daily_status_on", sub_or_none)
    return f"{status}\n\n{t(lang, 'daily_usage')}"


async def daily(message: Message, command: CommandObject, lang: str, services: Services, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    parsed = parse_daily(command.args, services.settings.default_utc_offset_minutes)
    if parsed is None:
        await message.answer(f"{t(lang, 'daily_invalid')}\n{t(lang, 'daily_usage')}")
        return
    try:
        reply = await _apply(uow, message.from_user.id, parsed, lang)
    except DATABASE_DOWN as exc:
        logger.warning("/daily: database unavailable (%s)", type(exc).__name__)
        reply = t(lang, "daily_unavailable")
    await message.answer(reply)


def create_router() -> Router:
    """A fresh router per dispatcher (a router can belong to one dispatcher only)."""
    router = Router(name="daily")
    router.message.register(daily, Command("daily"))
    return router
