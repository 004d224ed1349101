"""/daily and the daily-pick sender: a subscriber gets exactly one work a day at their hour, restarts neither
repeat nor lose it, a user who blocked the bot is unsubscribed, and our own outages only delay the pick."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.daily_schedule import format_offset, local_time, parse_daily, parse_offset
from bot.daily_sender import RETRY_DELAY, DailySender
from bot.services import build
from bot.settings import BotSettings
from storage.repositories import DailySubscription, Repo
from tests.bot.conftest import StartBot
from tests.bot.telegram_stub import Call, TelegramStub
from tests.private_services import free_port

# --- the arguments, as people type them ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("+3", 180), ("-5", -300), ("+5:30", 330), ("+0545", 345), ("UTC+3", 180), ("+14", 840), ("-12", -720)],
)
def test_offsets_people_write_are_understood(text: str, minutes: int) -> None:
    assert parse_offset(text) == minutes


@pytest.mark.parametrize("text", ["3", "+15", "-13", "+5:60", "+3h", "", "+", "utc"])
def test_impossible_offsets_are_refused(text: str) -> None:
    assert parse_offset(text) is None


def test_daily_arguments() -> None:
    assert parse_daily(None, 0).action == "status"  # type: ignore[union-attr]
    assert parse_daily("off", 0).action == "off"  # type: ignore[union-attr]
    on = parse_daily("on", 120)
    assert on is not None and (on.action, on.hour, on.utc_offset_minutes) == ("on", 9, 120)  # the defaults
    assert parse_daily("ON 21 -5", 0) == parse_daily("on 21:00 UTC-5", 0)
    only_offset = parse_daily("on +3", 0)
    assert only_offset is not None and (only_offset.hour, only_offset.utc_offset_minutes) == (9, 180)
    for bad in ("on 25", "on abc", "on 9 +3 extra", "on +3 9", "sometimes", "off now", "on 9 9"):
        assert parse_daily(bad, 0) is None, bad
    assert [format_offset(m) for m in (0, 180, -300, 330)] == ["UTC", "UTC+3", "UTC-5", "UTC+5:30"]


# --- /daily ------------------------------------------------------------------------------------------------


async def subscription(pool: asyncpg.Pool, user: int) -> DailySubscription | None:
    async with pool.acquire() as conn:
        return await Repo(conn).daily.get(user)


async def command(telegram: TelegramStub, user: int, text: str, lang: str = "en") -> str:
    """Send a command and return the bot's reply."""
    mark = len(telegram.calls)
    telegram.send_message(user, lang, text=text)
    return await telegram.reply_after(user, mark)


async def test_daily_on_status_and_off(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    before = datetime.now(UTC)
    reply = await command(telegram, user, "/daily on 9 +3")
    sub = await subscription(pool, user)
    assert sub is not None and (sub.hour, sub.utc_offset_minutes, sub.failures) == (9, 180, 0)
    local = sub.next_run_at + timedelta(hours=3)
    assert (local.hour, local.minute) == (9, 0) and before < sub.next_run_at <= before + timedelta(days=1)
    assert "every day at 09:00 (UTC+3)" in reply and local_time(sub.next_run_at, 180) in reply

    status = await command(telegram, user, "/daily")
    assert status.startswith("🎨 Daily pick: on, every day at 09:00 (UTC+3)")
    assert f"Next pick: {local_time(sub.next_run_at, 180)}" in status
    assert "/daily on" in status and "/daily off" in status  # the short usage comes with it

    assert "Daily pick is off" in await command(telegram, user, "/daily off")
    assert await subscription(pool, user) is None
    assert (await command(telegram, user, "/daily")).startswith("Daily pick: off.")

    russian = await command(telegram, user, "/daily on 21 -5:30", lang="ru")
    assert "каждый день в 21:00 (UTC-5:30)" in russian
    assert "Картина дня: выключена" in await command(telegram, new_id(), "/daily", lang="ru")


async def test_daily_without_an_offset_uses_the_configured_default(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot(default_utc_offset_minutes=60)
    user = new_id()
    assert "every day at 07:00 (UTC+1)" in await command(telegram, user, "/daily on 7")
    sub = await subscription(pool, user)
    assert sub is not None and (sub.hour, sub.utc_offset_minutes) == (7, 60)


async def test_invalid_daily_arguments_get_the_usage_and_store_nothing(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, new_id: Any
) -> None:
    await start_bot()
    user = new_id()
    for text in ("/daily on 25", "/daily on abc", "/daily on 9 +20", "/daily sometimes"):
        reply = await command(telegram, user, text)
        assert reply.startswith("I didn't get that.") and "/daily on" in reply, text
        assert await subscription(pool, user) is None, text
    assert "Не понял" in await command(telegram, user, "/daily on 25", lang="ru")
    assert await subscription(pool, user) is None


# --- the sender --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def daily_sender(
    settings: BotSettings, pool: asyncpg.Pool, redis: Redis, inference_url: str | None = None
) -> AsyncIterator[DailySender]:
    """A sender over the real bot (HTTP to the stub) and real services, as bot/__main__.py builds it: one
    'process'."""
    if inference_url is not None:
        settings = settings.model_copy(update={"inference_url": inference_url})
    async with build(settings, pool=pool) as services:
        yield services.daily


async def subscribe_due(telegram: TelegramStub, pool: asyncpg.Pool, user: int, lang: str = "en") -> datetime:
    """Subscribe through /daily on 9 +3, then turn the clock back a day: the pick is due at the returned time."""
    await command(telegram, user, "/daily on 9 +3", lang=lang)
    sub = await subscription(pool, user)
    assert sub is not None
    due = sub.next_run_at - timedelta(days=1)
    async with pool.acquire() as conn:
        await conn.execute("UPDATE daily_subscriptions SET next_run_at = $2 WHERE user_id = $1", user, due)
    return due


def calls_to(telegram: TelegramStub, user: int, after: int = 0) -> list[Call]:
    return [c for c in telegram.calls[after:] if str(c.params.get("chat_id")) == str(user)]


def like_panels(calls: list[Call]) -> list[Call]:
    return [
        c
        for c in calls
        if c.method == "sendMessage"
        and any(
            str(b.get("callback_data", "")).startswith("s:")
            for row in (c.params.get("reply_markup") or {}).get("inline_keyboard", [])
            for b in row
        )
    ]


async def test_a_due_pick_is_sent_once_and_a_restart_does_not_resend_it(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    settings = await start_bot()
    user = new_id()
    due = await subscribe_due(telegram, pool, user)
    regular = due + timedelta(days=1)  # 09:00 at UTC+3, the day after
    now = due + timedelta(minutes=1)
    mark = len(telegram.calls)
    async with daily_sender(settings, pool, bot_redis) as sender:
        run = await sender.run_once(now)
    assert run.sent >= 1
    sent = calls_to(telegram, user, mark)
    assert [c.method for c in sent] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert sent[0].params["text"] == "🎨 Your daily pick"
    (panel,) = like_panels(sent)
    assert panel.params["text"].startswith("Like it?")
    sub = await subscription(pool, user)
    assert sub is not None and sub.next_run_at == regular and sub.last_sent_at == now and sub.failures == 0
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT kind, artwork_ids FROM suggestions WHERE user_id = $1", user)
    assert [(r["kind"], len(r["artwork_ids"])) for r in rows] == [("daily", 1)]

    # "restart": a new process with a fresh sender, at the same moment and later that day, sends nothing more
    mark = len(telegram.calls)
    async with daily_sender(settings, pool, bot_redis) as restarted:
        await restarted.run_once(now)
        await restarted.run_once()
    assert calls_to(telegram, user, mark) == []
    assert await subscription(pool, user) == sub


async def test_a_user_who_blocked_the_bot_is_unsubscribed(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    settings = await start_bot()
    user = new_id()
    due = await subscribe_due(telegram, pool, user)
    telegram.blocked.add(user)
    async with daily_sender(settings, pool, bot_redis) as sender:
        run = await sender.run_once(due + timedelta(minutes=1))
    assert run.unsubscribed >= 1
    assert await subscription(pool, user) is None


async def test_inference_down_delays_the_pick_instead_of_losing_the_day(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    settings = await start_bot()
    user = new_id()
    due = await subscribe_due(telegram, pool, user, lang="ru")
    regular = due + timedelta(days=1)
    now = due + timedelta(minutes=1)
    mark = len(telegram.calls)
    async with daily_sender(settings, pool, bot_redis, inference_url=f"http://127.0.0.1:{free_port()}") as down:
        run = await down.run_once(now)
    assert run.retry >= 1 and calls_to(telegram, user, mark) == []
    sub = await subscription(pool, user)
    assert sub is not None and sub.next_run_at == now + RETRY_DELAY and sub.failures == 0

    # the service is back by the retry: the pick goes out (in the user's language) and the day is realigned
    async with daily_sender(settings, pool, bot_redis) as back:
        await back.run_once(now + RETRY_DELAY)
    sent = calls_to(telegram, user, mark)
    assert [c.method for c in sent] == ["sendMessage", "sendPhoto", "sendMessage"]
    assert sent[0].params["text"] == "🎨 Картина дня для вас"
    sub = await subscription(pool, user)
    assert sub is not None and sub.next_run_at == regular and sub.last_sent_at == now + RETRY_DELAY


async def test_a_flood_wait_from_telegram_is_waited_out_and_the_user_still_gets_the_pick(
    telegram: TelegramStub, start_bot: StartBot, pool: asyncpg.Pool, bot_redis: Redis, new_id: Any
) -> None:
    settings = await start_bot()
    user = new_id()
    due = await subscribe_due(telegram, pool, user)
    telegram.flood_waits[user] = 1  # the first send answers 429 "retry after 1"
    mark = len(telegram.calls)
    started = time.monotonic()
    async with daily_sender(settings, pool, bot_redis) as sender:
        await sender.run_once(due + timedelta(minutes=1))
    assert time.monotonic() - started >= 0.9  # it waited as told
    sent = calls_to(telegram, user, mark)
    assert [c.method for c in sent] == ["sendMessage", "sendMessage", "sendPhoto", "sendMessage"]  # intro retried
    assert len(like_panels(sent)) == 1
    sub = await subscription(pool, user)
    assert sub is not None and sub.failures == 0 and sub.last_sent_at is not None


async def test_a_retry_never_postpones_the_regular_pick(pool: asyncpg.Pool, new_id: Any) -> None:
    user = new_id()
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        daily = Repo(conn).daily
        await Repo(conn).users.touch(user, "en")
        regular = (await daily.subscribe(user, 9, 0, now)).next_run_at
        await daily.retry_at(user, regular + timedelta(hours=1))
        assert (await daily.get(user)).next_run_at == regular  # type: ignore[union-attr]
        await daily.retry_at(user, now - timedelta(minutes=1))
        assert (await daily.get(user)).next_run_at == now - timedelta(minutes=1)  # type: ignore[union-attr]
        await daily.unsubscribe(user)  # leave nothing due for the other tests' senders
