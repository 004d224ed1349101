"""Wiring: the Bot, the Dispatcher with its storage, middlewares and routers. No I/O at import time."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import BotCommand
from redis.asyncio import Redis

from bot.analysis_flow import AnalysisDeps
from bot.handlers import get_routers
from bot.inference_client import InferenceClient
from bot.middlewares import RateLimitMiddleware, UserLanguageMiddleware
from bot.settings import BotSettings
from feedback.recorder import FeedbackRecorder
from storage.cache import AnalysisCache, FeedbackOutbox, RateLimiter, ShownAnalysisRegistry

logger = logging.getLogger(__name__)

SHOWN_TTL_SECONDS = 30 * 24 * 3600


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
    recorder = FeedbackRecorder(pool, outbox, ShownAnalysisRegistry(redis, ttl_seconds=SHOWN_TTL_SECONDS))
    deps = AnalysisDeps(
        inference=inference,
        pool=pool,
        cache=AnalysisCache(redis, ttl_seconds=settings.analysis_cache_ttl_s),
        recorder=recorder,
        top_k=settings.top_k,
        in_flight=asyncio.Semaphore(settings.max_photos_in_flight),
    )
    dp = Dispatcher(
        storage=RedisStorage(redis),
        settings=settings,
        pool=pool,
        deps=deps,
        recorder=recorder,
    )
    user_language = UserLanguageMiddleware(pool)
    dp.message.outer_middleware(user_language)
    dp.callback_query.outer_middleware(user_language)
    dp.message.middleware(
        RateLimitMiddleware(RateLimiter(redis, limit=settings.photos_per_minute, window_seconds=60))
    )
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
        None: [("start", "What ArtMatch does"), ("help", "How it works"), ("lang", "Language")],
        "ru": [("start", "Что умеет ArtMatch"), ("help", "Как это работает"), ("lang", "Язык")],
    }.items():
        await bot.set_my_commands(
            [BotCommand(command=c, description=d) for c, d in commands], language_code=lang
        )


@contextlib.asynccontextmanager
async def background(recorder: FeedbackRecorder, interval_s: float):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(flush_outbox_forever(recorder, interval_s))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
