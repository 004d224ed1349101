"""Webhook mode with two bot replicas behind it, as Telegram would use them: updates for the same users arrive at
either replica; votes are stored and answered once, FSM state set through one is seen by the other, and a request
without Telegram's secret header is refused unprocessed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiogram import Dispatcher
from pydantic import ValidationError
from redis.asyncio import Redis

from bot.callbacks import ForgetCallback
from bot.dispatcher import create_dispatcher
from bot.services import Services, build
from bot.settings import BotSettings
from bot.texts import t
from bot.webhook import register_webhook, serving
from tests.bot.conftest import BOT_TOKEN, bot_redis_url, bot_settings
from tests.bot.telegram_stub import TelegramStub
from tests.bot.test_photo_flow import analysis_id_of, is_panel, vote_data
from tests.factories import image_bytes, synthetic_artwork
from tests.fixtures_gallery import SERVICE_TOKEN

ROOT = Path(__file__).resolve().parents[2]
SECRET = "replicas-share-this-secret_0123456789"
PUBLIC_URL = "https://bot.example.org/telegram"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


class Replica:
    """One bot replica in this event loop: its own pool, Redis client, dispatcher and web server."""

    def __init__(self, services: Services, dp: Dispatcher, url: str) -> None:
        self.services, self.dp, self.url = services, dp, url

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        return await post(self.url, update, secret)


async def post(url: str, update: dict[str, Any], secret: str | None = SECRET) -> int:
    """POST an update as Telegram does (JSON, the secret in its header); returns the HTTP status."""
    headers = {HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=update, headers=headers) as response:
        return response.status


def webhook_settings(telegram: TelegramStub, inference_url: str, pg_dsn: str, redis_url: str) -> BotSettings:
    return bot_settings(
        telegram,
        inference_url,
        pg_dsn,
        redis_url,
        outbox_flush_interval_s=BotSettings.model_fields["outbox_flush_interval_s"].default,
        metrics_port=BotSettings.model_fields["metrics_port"].default,
        mode="webhook",
        webhook_url=PUBLIC_URL,
        webhook_secret=SECRET,
        webhook_host="127.0.0.1",
        webhook_port=0,
    )


@contextlib.asynccontextmanager
async def replica(settings: BotSettings) -> AsyncIterator[Replica]:
    async with build(settings) as services:
        dp = create_dispatcher(services)
        async with serving(dp, services.bot, settings) as url:
            await register_webhook(dp, services.bot, settings)
            yield Replica(services, dp, url)


@pytest.fixture
async def replicas(
    telegram: TelegramStub, inference_url: str, pool: asyncpg.Pool, pg_dsn: str, redis_url: str, bot_redis: Redis
) -> AsyncIterator[tuple[Replica, Replica]]:
    settings = webhook_settings(telegram, inference_url, pg_dsn, redis_url)
    async with replica(settings) as first, replica(settings) as second:
        yield first, second


_ids = iter(range(10**6, 10**9))


def message(telegram: TelegramStub, user_id: int, **content: Any) -> dict[str, Any]:
    body = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private"},
        "from": telegram.user(user_id),
        **content,
    }
    return {"update_id": next(_ids), "message": body}


def press(telegram: TelegramStub, user_id: int, data: str) -> dict[str, Any]:
    query = {
        "id": str(next(_ids)),
        "from": telegram.user(user_id),
        "chat_instance": "ci",
        "data": data,
        "message": {"message_id": 1, "date": int(time.time()), "chat": {"id": user_id, "type": "private"}},
    }
    return {"update_id": next(_ids), "callback_query": query}


def photo(telegram: TelegramStub, user_id: int, data: bytes) -> dict[str, Any]:
    file_id = f"webhook-photo-{next(_ids)}"
    telegram.add_file(file_id, data, f"photos/{file_id}.jpg")
    size = {"file_id": file_id, "file_unique_id": file_id, "width": 96, "height": 80, "file_size": len(data)}
    return message(telegram, user_id, photo=[size])


async def answer_to(telegram: TelegramStub, update: dict[str, Any]) -> str:
    query_id = update["callback_query"]["id"]
    call = await telegram.wait_for(
        lambda c: c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id, timeout=30
    )
    return str(call.params.get("text", ""))


def answers(telegram: TelegramStub, update: dict[str, Any]) -> int:
    query_id = update["callback_query"]["id"]
    return len([c for c in telegram.sent("answerCallbackQuery") if c.params.get("callback_query_id") == query_id])


async def test_each_replica_sets_the_same_webhook_with_the_secret(
    telegram: TelegramStub, replicas: tuple[Replica, Replica]
) -> None:
    calls = telegram.sent("setWebhook")
    assert len(calls) == 2  # one per replica, identical: idempotent, no coordination needed
    for call in calls:
        assert call.params["url"] == PUBLIC_URL
        assert call.params["secret_token"] == SECRET
        assert "callback_query" in str(call.params["allowed_updates"])


async def test_photo_on_one_replica_vote_on_the_other_is_stored_and_answered_once(
    telegram: TelegramStub, replicas: tuple[Replica, Replica], pool: asyncpg.Pool, new_id: Any
) -> None:
    first, second = replicas
    user = new_id()
    assert await first.post(photo(telegram, user, image_bytes(synthetic_artwork(7)))) == 200
    panel = await telegram.wait_for(is_panel(user), timeout=120)
    analysis_id = analysis_id_of(panel)

    vote = press(telegram, user, vote_data(analysis_id, "left"))
    assert await second.post(vote) == 200
    assert await answer_to(telegram, vote) == "Thanks, your vote is saved!"
    again = press(telegram, user, vote_data(analysis_id, "left"))  # the user taps again; the other replica gets it
    assert await first.post(again) == 200
    assert await answer_to(telegram, again) == "Your vote is already counted."

    await asyncio.sleep(0.5)  # a second replica handling the same update would have answered by now
    async with pool.acquire() as conn:
        votes = await conn.fetch("SELECT choice FROM votes WHERE analysis_id = $1", analysis_id)
    assert [v["choice"] for v in votes] == ["left"]
    assert answers(telegram, vote) == 1 and answers(telegram, again) == 1
    assert len(telegram.sent("sendMediaGroup", chat_id=user)) == 2  # the two sets, once each
    assert len([c for c in telegram.calls if is_panel(user)(c)]) == 1


async def test_fsm_state_set_through_one_replica_is_seen_and_cleared_through_the_other(
    telegram: TelegramStub, replicas: tuple[Replica, Replica], new_id: Any
) -> None:
    first, second = replicas
    user = new_id()
    on_first = first.dp.fsm.get_context(first.services.bot, chat_id=user, user_id=user)
    on_second = second.dp.fsm.get_context(second.services.bot, chat_id=user, user_id=user)
    await on_first.set_state("search:awaiting_words")
    await on_first.update_data(query="starry night")
    assert await on_second.get_state() == "search:awaiting_words"
    assert await on_second.get_data() == {"query": "starry night"}

    assert await first.post(message(telegram, user, text="/forget")) == 200
    await telegram.wait_text(user, t("en", "forget_confirm")[:30], timeout=30)
    confirm = press(telegram, user, ForgetCallback(confirm=True).pack())
    assert await second.post(confirm) == 200  # /forget clears the FSM in the handler on the second replica
    await telegram.wait_text(user, "Done: I have forgotten you", timeout=30)
    assert await on_first.get_state() is None and await on_first.get_data() == {}
    await asyncio.sleep(0.3)
    done = [c for c in telegram.sent("sendMessage", chat_id=user) if "forgotten you" in str(c.params.get("text"))]
    assert len(done) == 1 and answers(telegram, confirm) == 1


async def test_requests_without_the_right_secret_are_refused_and_not_processed(
    telegram: TelegramStub, replicas: tuple[Replica, Replica], pool: asyncpg.Pool, new_id: Any
) -> None:
    first, second = replicas
    user = new_id()
    start = message(telegram, user, text="/start")
    assert await first.post(start, secret=None) == 401
    assert await second.post(start, secret="not-" + SECRET) == 401
    await asyncio.sleep(0.5)
    assert telegram.sent(chat_id=user) == []
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM users WHERE telegram_id = $1", user) == 0
    # the very same update with the secret is answered: the refusal was the header's doing
    assert await second.post(start) == 200
    await telegram.wait_text(user, "Hi! I'm ArtMatch", timeout=30)


async def test_both_replicas_running_the_daily_job_at_once_send_one_pick(
    telegram: TelegramStub, replicas: tuple[Replica, Replica], pool: asyncpg.Pool, new_id: Any
) -> None:
    """Background jobs run in every replica: the daily claim (SKIP LOCKED) gives a due pick to one of them."""
    first, second = replicas
    user = new_id()
    assert await second.post(message(telegram, user, text="/daily on 9 +3")) == 200
    await telegram.wait_for(lambda c: c.method == "sendMessage" and str(c.params.get("chat_id")) == str(user))
    async with pool.acquire() as conn:
        due = await conn.fetchval(
            "UPDATE daily_subscriptions SET next_run_at = next_run_at - interval '1 day' WHERE user_id = $1 "
            "RETURNING next_run_at",
            user,
        )
    mark = len(telegram.calls)
    now = due + timedelta(minutes=1)
    runs = await asyncio.gather(first.services.daily.run_once(now), second.services.daily.run_once(now))
    sent = [c.method for c in telegram.calls[mark:] if str(c.params.get("chat_id")) == str(user)]
    assert sent == ["sendMessage", "sendPhoto", "sendMessage"]  # one pick: intro, work, like panel
    assert sum(run.sent for run in runs) >= 1


async def test_a_users_rate_limit_counts_across_replicas(
    telegram: TelegramStub,
    inference_url: str,
    pool: asyncpg.Pool,
    pg_dsn: str,
    redis_url: str,
    bot_redis: Redis,
    new_id: Any,
) -> None:
    settings = webhook_settings(telegram, inference_url, pg_dsn, redis_url).model_copy(update={"photos_per_minute": 2})
    user = new_id()
    async with replica(settings) as first, replica(settings) as second:
        for target in (first, second):  # /likes shares the photos' budget: two allowed, one on each replica
            mark = len(telegram.calls)
            assert await target.post(message(telegram, user, text="/likes")) == 200
            assert "faster than I can look" not in await telegram.reply_after(user, mark)
        mark = len(telegram.calls)
        assert await first.post(message(telegram, user, text="/likes")) == 200
        assert "faster than I can look" in await telegram.reply_after(user, mark)


def test_webhook_mode_needs_a_url_and_a_real_secret_and_polling_stays_the_default() -> None:
    common: dict[str, Any] = {"token": BOT_TOKEN, "inference_token": SERVICE_TOKEN}
    assert BotSettings(**common).mode == "polling"
    with pytest.raises(ValidationError, match="token_urlsafe"):
        BotSettings(**common, mode="webhook", webhook_url=PUBLIC_URL)
    with pytest.raises(ValidationError, match="BOT_WEBHOOK_SECRET"):
        BotSettings(**common, mode="webhook", webhook_url=PUBLIC_URL, webhook_secret="has spaces in it")
    with pytest.raises(ValidationError, match="BOT_WEBHOOK_URL"):
        BotSettings(**common, mode="webhook", webhook_secret=SECRET)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_bot_process_in_webhook_mode_sets_the_webhook_and_answers_only_signed_updates(
    telegram: TelegramStub, fresh_schema_dsn: Any, redis_url: str, tmp_path: Path
) -> None:
    dsn = await fresh_schema_dsn()
    port = free_port()
    env = {
        **os.environ,
        "BOT_TOKEN": BOT_TOKEN,
        "BOT_API_BASE_URL": telegram.base_url,
        "BOT_INFERENCE_URL": "http://127.0.0.1:9",  # not needed for /start
        "BOT_INFERENCE_TOKEN": SERVICE_TOKEN,
        "BOT_POSTGRES_DSN": dsn,
        "BOT_REDIS_URL": bot_redis_url(redis_url),
        "BOT_MODE": "webhook",
        "BOT_WEBHOOK_URL": PUBLIC_URL,
        "BOT_WEBHOOK_SECRET": SECRET,
        "BOT_WEBHOOK_HOST": "127.0.0.1",
        "BOT_WEBHOOK_PORT": str(port),
        "BOT_WEBHOOK_PATH": "/hook",
    }
    log_path = tmp_path / "bot.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        call = await telegram.wait_for(lambda c: c.method == "setWebhook", timeout=60)
        assert call.params["url"] == PUBLIC_URL and call.params["secret_token"] == SECRET
        url = f"http://127.0.0.1:{port}/hook"
        start = message(telegram, 88, text="/start")
        assert await post(url, start, secret="wrong") == 401
        assert await post(url, start) == 200
        await telegram.wait_text(88, "Hi! I'm ArtMatch", timeout=30)
    finally:
        process.terminate()
        returncode = await asyncio.to_thread(process.wait, 20)
    logs = log_path.read_text()
    assert returncode == 0, logs
    assert SECRET not in logs and "webhook set" in logs
