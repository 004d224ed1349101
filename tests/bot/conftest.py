"""The bot under test: real aiogram polling a local Bot API stand-in, real inference over HTTP, real PG + Redis."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.background import Job, running
from bot.dispatcher import create_dispatcher
from bot.services import Services, build
from bot.settings import BotSettings
from tests.bot.telegram_stub import TelegramStub
from tests.fixtures_gallery import SERVICE_TOKEN

BOT_TOKEN = "4242:test-token-never-logged"
# The bot's FSM, cache and limits live in their own Redis database, flushed per test (TEST_BOT_REDIS_DB lets two
# test runs on one machine keep out of each other's way).
BOT_REDIS_DB = int(os.environ.get("TEST_BOT_REDIS_DB", "7"))


@pytest.fixture
async def telegram() -> AsyncIterator[TelegramStub]:
    stub = TelegramStub(BOT_TOKEN)
    await stub.start()
    yield stub
    await stub.stop()


@pytest.fixture
async def bot_redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url.rsplit("/", 1)[0] + f"/{BOT_REDIS_DB}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


StartBot = Callable[..., Awaitable[BotSettings]]


def bot_redis_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{BOT_REDIS_DB}"


def bot_settings(
    telegram: TelegramStub, inference_url: str, pg_dsn: str, redis_url: str, **overrides: Any
) -> BotSettings:
    """The bot's settings in tests: the Bot API stand-in, the real service and databases, a quick outbox replay, no
    metrics server, the two-set flow; keyword arguments override."""
    defaults: dict[str, Any] = {
        "outbox_flush_interval_s": 0.2,
        "metrics_port": 0,  # off unless a test scrapes it
        # the two-set flow by default; the arena's tests open it to every recommender
        "arena_recommenders": ["by_look", "by_meaning"],
    }
    return BotSettings(
        token=BOT_TOKEN,
        api_base_url=telegram.base_url,
        inference_url=inference_url,
        inference_token=SERVICE_TOKEN,
        postgres_dsn=pg_dsn,
        redis_url=bot_redis_url(redis_url),
        **{**defaults, **overrides},
    )


@contextlib.asynccontextmanager
async def polling(settings: BotSettings, *, pool: asyncpg.Pool | None = None) -> AsyncIterator[Services]:
    """The bot as `python -m bot` runs it (same composition root), polling in this event loop; the outbox
    replay runs beside it (the other background jobs are tested on their own)."""
    async with build(settings, pool=pool) as services:
        dp = create_dispatcher(services)
        outbox = Job("outbox", services.recorder.flush_outbox, settings.outbox_flush_interval_s)
        async with running([outbox]):
            task = asyncio.create_task(dp.start_polling(services.bot, polling_timeout=1, handle_signals=False))
            try:
                yield services
            finally:
                with contextlib.suppress(RuntimeError):
                    await asyncio.wait_for(dp.stop_polling(), 30)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)


@pytest.fixture
async def start_bot(
    telegram: TelegramStub, inference_url: str, pool: asyncpg.Pool, pg_dsn: str, redis_url: str, bot_redis: Redis
) -> AsyncIterator[StartBot]:
    """Start the bot (polling in this event loop, over HTTP); keyword arguments override settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> BotSettings:
            service = overrides.pop("inference_url", inference_url)
            settings = bot_settings(telegram, service, pg_dsn, redis_url, **overrides)
            await stack.enter_async_context(polling(settings, pool=pool))
            return settings

        yield start


@contextlib.asynccontextmanager
async def bot_on_a_dead_database(telegram: TelegramStub, redis: Redis, **overrides: Any) -> AsyncIterator[None]:
    """The bot while Postgres restarts: its pool points at a port nothing listens on."""
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0, max_size=2)
    kwargs = redis.connection_pool.connection_kwargs
    settings = BotSettings(
        token=BOT_TOKEN,
        api_base_url=telegram.base_url,
        inference_token=SERVICE_TOKEN,
        redis_url=f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}",
        **{
            "inference_url": "http://127.0.0.1:1",
            "look_timeout_s": 5,
            "analyze_timeout_s": 5,
            "metrics_port": 0,
            **overrides,
        },
    )
    try:
        async with polling(settings, pool=dead):
            yield
    finally:
        await dead.close()
