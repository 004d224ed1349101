"""Wiring: the Bot, the Dispatcher with its storage, middlewares and routers. No I/O at import time."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand
from redis.asyncio import Redis

from bot.analysis_flow import AnalysisDeps
from bot.arena import Arena
from bot.handlers import get_routers
from bot.inference_client import InferenceClient
from bot.middlewares import RateLimitMiddleware, UserLanguageMiddleware
from bot.settings import BotSettings
from feedback.leaderboard import LeaderboardCache, refresh_forever
from feedback.recorder import FeedbackRecorder
from storage.cache import AnalysisCache, FeedbackOutbox, RateLimiter, ShownAnalysisRegistry

logger = logging.getLogger(__name__)

SHOWN_TTL_SECONDS = 30 * 24 * 3600
MIN_LEADERBOARD_TTL_S = 60

# Zero-argument coroutine factory for the arena refresh loop; `create_dispatcher` puts one in `dp["arena_refresh"]`.
ArenaRefresh = Callable[[], Coroutine[Any, Any, None]]


def create_bot(settings: BotSettings) -> Bot:
    """A Bot pointed at api.telegram.org or at a self-hosted Bot API server."""
    session = None
    if settings.api_base_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base_url))
    return Bot(
        token=settings.token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )


def create_dispatcher(
    settings: BotSettings, pool: asyncpg.Pool, redis: Redis, inference: InferenceClient
) -> Dispatcher:
    """Long-lived collaborators go in as workflow data; handlers receive them as typed keyword arguments."""
    outbox = FeedbackOutbox(redis)
    recorder = FeedbackRecorder(
        pool,
        outbox,
        ShownAnalysisRegistry(redis, ttl_seconds=SHOWN_TTL_SECONDS),
        ShownAnalysisRegistry(redis, ttl_seconds=SHOWN_TTL_SECONDS, namespace="suggested"),
    )
    # A board outlives a few refresh intervals, not more: if the refresh loop stops, /stats recomputes.
    leaderboard_ttl = max(MIN_LEADERBOARD_TTL_S, int(3 * settings.arena_refresh_s))
    leaderboard_cache = LeaderboardCache(redis, ttl_seconds=leaderboard_ttl)
    arena = Arena(
        inference, leaderboard_cache, allowed=settings.arena_recommenders, mode=settings.arena_mode
    )
    deps = AnalysisDeps(
        inference=inference,
        pool=pool,
        cache=AnalysisCache(redis, ttl_seconds=settings.analysis_cache_ttl_s),
        recorder=recorder,
        top_k=settings.top_k,
        arena=arena,
        in_flight=asyncio.Semaphore(settings.max_photos_in_flight),
    )
    arena_refresh = functools.partial(
        refresh_forever,
        pool,
        leaderboard_cache,
        arena.names,
        settings.arena_refresh_s,
        settings.arena_bootstrap,
    )
    dp = Dispatcher(
        storage=RedisStorage(redis),
        settings=settings,
        pool=pool,
        deps=deps,
        recorder=recorder,
        arena=arena,
        leaderboard_cache=leaderboard_cache,
        arena_refresh=arena_refresh,
    )
    user_language = UserLanguageMiddleware(pool)
    dp.message.outer_middleware(user_language)
    dp.callback_query.outer_middleware(user_language)
    rate_limit = RateLimitMiddleware(RateLimiter(redis, limit=settings.photos_per_minute, window_seconds=60))
    dp.message.middleware(rate_limit)
    dp.callback_query.middleware(rate_limit)
    dp.include_routers(*get_routers())
    return dp


async def flush_outbox_forever(recorder: FeedbackRecorder, interval_s: float) -> None:
    """Replays votes and likes queued while Postgres was unavailable."""
    while True:
        try:
            flushed = await recorder.flush_outbox()
            if flushed:
                logger.info("outbox: %d queued feedback events written", flushed)
        except Exception:
            logger.warning("outbox flush failed; will retry", exc_info=True)
        await asyncio.sleep(interval_s)


async def set_commands(bot: Bot) -> None:
    for lang, commands in {
        None: [
            ("start", "What ArtMatch does"),
            ("foryou", "Works picked for your taste"),
            ("help", "How it works"),
            ("lang", "Language"),
            ("daily", "A work picked for you every day"),
            ("forget", "Delete everything about me"),
        ],
        "ru": [
            ("start", "Что умеет ArtMatch"),
            ("foryou", "Работы под ваш вкус"),
            ("help", "Как это работает"),
            ("lang", "Язык"),
            ("daily", "Работа для вас каждый день"),
            ("forget", "Удалить всё обо мне"),
        ],
    }.items():
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in commands], language_code=lang
        )


@contextlib.asynccontextmanager
async def background(  # type: ignore[no-untyped-def]
    recorder: FeedbackRecorder, interval_s: float, arena_refresh: ArenaRefresh | None = None
):
    """The outbox flusher and, when given (`dp["arena_refresh"]`), the arena leaderboard refresh."""
    task = asyncio.create_task(flush_outbox_forever(recorder, interval_s))
    arena_task = asyncio.create_task(arena_refresh()) if arena_refresh is not None else None
    try:
        yield task
    finally:
        for job in (task, arena_task):
            if job is not None:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
