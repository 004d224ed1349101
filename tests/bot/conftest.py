"""The bot under test: real aiogram polling a local Bot API stand-in, real inference over HTTP, real PG + Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.app import background, create_bot, create_dispatcher
from bot.inference_client import InferenceClient
from bot.settings import BotSettings
from tests.bot.telegram_stub import TelegramStub
from tests.fixtures_gallery import SERVICE_TOKEN

BOT_TOKEN = "4242:test-token-never-logged"
BOT_REDIS_DB = 7  # the bot's FSM, cache and limits live in their own Redis database, flushed per test


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


@pytest.fixture
async def start_bot(
    telegram: TelegramStub, inference_url: str, pool: asyncpg.Pool, pg_dsn: str, bot_redis: Redis
) -> AsyncIterator[StartBot]:
    """Start the bot (polling in this event loop, over HTTP); keyword arguments override settings."""
    stoppers: list[Callable[[], Awaitable[None]]] = []

    async def start(**overrides: Any) -> BotSettings:
        settings = BotSettings(
            token=BOT_TOKEN,
            api_base_url=telegram.base_url,
            inference_url=overrides.pop("inference_url", inference_url),
            inference_token=SERVICE_TOKEN,
            postgres_dsn=pg_dsn,
            redis_url="unused",
            outbox_flush_interval_s=0.2,
            # the two-set flow by default; the arena's tests open it to every recommender
            arena_recommenders=overrides.pop("arena_recommenders", ["by_look", "by_meaning"]),
            **overrides,
        )
        inference = InferenceClient(
            settings.inference_url,
            settings.inference_token.get_secret_value(),
            look_timeout=settings.look_timeout_s,
            analyze_timeout=settings.analyze_timeout_s,
        )
        bot = create_bot(settings)
        dp = create_dispatcher(settings, pool, bot_redis, inference)
        flusher = background(dp["recorder"], settings.outbox_flush_interval_s)
        await flusher.__aenter__()
        task = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))

        async def stop() -> None:
            with contextlib.suppress(RuntimeError):
                await dp.stop_polling()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
            await flusher.__aexit__(None, None, None)
            await inference.close()
            await bot.session.close()

        stoppers.append(stop)
        return settings

    yield start
    for stop in reversed(stoppers):
        await stop()


@contextlib.asynccontextmanager
async def bot_on_a_dead_database(telegram: TelegramStub, redis: Redis, **overrides: Any) -> AsyncIterator[None]:
    """The bot while Postgres restarts: its pool points at a port nothing listens on."""
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0, max_size=2)
    settings = BotSettings(
        token=BOT_TOKEN,
        api_base_url=telegram.base_url,
        inference_token=SERVICE_TOKEN,
        redis_url="unused",
        **{"inference_url": "http://127.0.0.1:1", **overrides},
    )
    inference = InferenceClient(settings.inference_url, SERVICE_TOKEN, look_timeout=5, analyze_timeout=5)
    bot = create_bot(settings)
    dp = create_dispatcher(settings, dead, redis, inference)
    task = asyncio.create_task(dp.start_polling(bot, polling_timeout=1, handle_signals=False))
    try:
        yield
    finally:
        with contextlib.suppress(RuntimeError):
            await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await inference.close()
        await bot.session.close()
        await dead.close()
