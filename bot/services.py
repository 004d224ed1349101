"""The composition root: every long-lived object of the bot process is built here, once, and closed here.

`build(settings)` opens Postgres, Redis, the inference client and the Bot (behind the Telegram send layer) and
yields `Services`; `bot.dispatcher.create_dispatcher(services)` hands it to aiogram as ONE workflow-data entry,
`services`, which handlers declare as a typed keyword argument; `background_jobs(services)` lists the loops that
run beside polling. `python -m bot` and the tests call the same functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand
from redis.asyncio import Redis

from bot.arena import Arena
from bot.background import Job
from bot.chat import AlbumCollector, ChatTurns
from bot.daily_sender import DailySender
from bot.inference_client import InferenceClient
from bot.keyframes import KeyFrames
from bot.metrics import metrics_server
from bot.personal import PersonalFlow
from bot.photo_flow import PhotoFlow
from bot.search_flow import SearchFlow
from bot.sending import SendLayer, install_send_layer
from bot.settings import BotSettings
from feedback.leaderboard import LeaderboardCache, refresh_leaderboard
from feedback.recorder import FeedbackRecorder
from storage.cache import (
    REDIS_DOWN,
    AnalysisCache,
    FeedbackOutbox,
    RateLimiter,
    ShownAnalysisRegistry,
    create_redis,
    redis_persistence,
)
from storage.db import UnitOfWork, create_pool, unit_of_work

logger = logging.getLogger(__name__)

SHOWN_TTL_SECONDS = 30 * 24 * 3600
MIN_LEADERBOARD_TTL_S = 60

COMMANDS = {
    None: [
        ("start", "What ArtMatch does"),
        ("foryou", "Works picked for your taste"),
        ("search", "Find works by words"),
        ("color", "Find works by colour"),
        ("likes", "The works you liked"),
        ("help", "How it works"),
        ("lang", "Language"),
        ("daily", "A work picked for you every day"),
        ("forget", "Delete everything about me"),
    ],
    "ru": [
        ("start", "Что умеет ArtMatch"),
        ("foryou", "Работы под ваш вкус"),
        ("search", "Найти работы по словам"),
        ("color", "Найти работы по цвету"),
        ("likes", "Понравившиеся работы"),
        ("help", "Как это работает"),
        ("lang", "Язык"),
        ("daily", "Работа для вас каждый день"),
        ("forget", "Удалить всё обо мне"),
    ],
}


@dataclass(frozen=True)
class Services:
    """Everything a handler or background job may use. Handlers get the database only per update (`uow`, from
    DatabaseMiddleware); the pool itself is here only for the start-up migration and to be closed."""

    settings: BotSettings
    bot: Bot
    pool: asyncpg.Pool
    redis: Redis
    uow: UnitOfWork
    inference: InferenceClient
    recorder: FeedbackRecorder
    rate_limiter: RateLimiter
    arena: Arena
    leaderboard: LeaderboardCache
    photos: PhotoFlow
    searches: SearchFlow
    personal: PersonalFlow
    albums: AlbumCollector
    daily: DailySender
    keyframes: KeyFrames


def create_bot(settings: BotSettings) -> Bot:
    """A Bot pointed at api.telegram.org or at a self-hosted Bot API server, every call through the send layer."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.api_base_url)) if settings.api_base_url else None
    bot = Bot(
        token=settings.token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(link_preview_is_disabled=True),
    )
    install_send_layer(
        bot,
        SendLayer(
            chat_rate=settings.chat_messages_per_second,
            chat_burst=settings.chat_burst,
            global_rate=settings.messages_per_second,
            global_burst=max(1, int(settings.messages_per_second)),
            retry_budget_s=settings.send_retry_budget_s,
            # An album counts as one message against the chat's budget: charging its items would hold every
            # answer back 5-10 s, and Telegram tolerates one answer's short burst.
            charge_album_items=False,
        ),
    )
    return bot


@contextlib.asynccontextmanager
async def build(settings: BotSettings, *, pool: asyncpg.Pool | None = None) -> AsyncIterator[Services]:
    """Open everything, and serve the metrics (BOT_METRICS_PORT); close it all on exit. `pool` lets a test hand in
    its own (e.g. one on a dead port)."""
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await create_pool(settings.postgres_dsn)
            stack.push_async_callback(pool.close)
        redis = create_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        inference = InferenceClient(
            settings.inference_url,
            settings.inference_token.get_secret_value(),
            look_timeout=settings.look_timeout_s,
            analyze_timeout=settings.analyze_timeout_s,
        )
        stack.push_async_callback(inference.close)
        bot = create_bot(settings)
        stack.push_async_callback(bot.session.close)
        services = _wire(settings, bot, pool, redis, inference)
        await stack.enter_async_context(
            metrics_server(settings.metrics_host, settings.metrics_port, services.recorder.outbox)
        )
        yield services


def _wire(settings: BotSettings, bot: Bot, pool: asyncpg.Pool, redis: Redis, inference: InferenceClient) -> Services:
    uow: UnitOfWork = functools.partial(unit_of_work, pool)
    cache = AnalysisCache(redis, ttl_seconds=settings.analysis_cache_ttl_s)
    recorder = FeedbackRecorder(
        uow,
        FeedbackOutbox(redis),
        ShownAnalysisRegistry(redis, ttl_seconds=SHOWN_TTL_SECONDS),
        ShownAnalysisRegistry(redis, ttl_seconds=SHOWN_TTL_SECONDS, namespace="suggested"),
        cache,
    )
    # A board outlives a few refresh intervals, not more: if the refresh stops, /stats recomputes.
    leaderboard = LeaderboardCache(redis, ttl_seconds=max(MIN_LEADERBOARD_TTL_S, int(3 * settings.arena_refresh_s)))
    arena = Arena(
        inference,
        leaderboard,
        allowed=settings.arena_recommenders,
        allowed_text=settings.search_recommenders,
        mode=settings.arena_mode,
    )
    personal = PersonalFlow(inference, recorder, settings.foryou_k, settings.foryou_exploration)
    turns = ChatTurns()  # photos and searches of one chat are answered one at a time, in order
    return Services(
        settings=settings,
        bot=bot,
        pool=pool,
        redis=redis,
        uow=uow,
        inference=inference,
        recorder=recorder,
        rate_limiter=RateLimiter(redis, limit=settings.photos_per_minute, window_seconds=60),
        arena=arena,
        leaderboard=leaderboard,
        photos=PhotoFlow(
            inference=inference,
            cache=cache,
            recorder=recorder,
            arena=arena,
            top_k=settings.top_k,
            in_flight=asyncio.Semaphore(settings.max_photos_in_flight),
            turns=turns,
        ),
        searches=SearchFlow(
            inference=inference,
            recorder=recorder,
            arena=arena,
            top_k=settings.top_k,
            max_chars=settings.search_max_chars,
            turns=turns,
        ),
        personal=personal,
        albums=AlbumCollector(),
        daily=DailySender(
            bot,
            uow,
            personal,
            max_per_second=settings.daily_max_per_second,
            max_failures=settings.daily_max_failures,
        ),
        keyframes=KeyFrames(),
    )


def background_jobs(services: Services) -> list[Job]:
    """What runs beside polling: outbox replay, the arena leaderboard refit and the daily picks."""
    settings = services.settings
    refit = functools.partial(
        refresh_leaderboard, services.uow, services.leaderboard, services.arena.names, settings.arena_bootstrap
    )
    return [
        Job("outbox", services.recorder.flush_outbox, settings.outbox_flush_interval_s),
        Job("arena leaderboard", refit, settings.arena_refresh_s),
        Job("daily picks", services.daily.run_once, settings.daily_poll_s),
    ]


async def set_commands(bot: Bot) -> None:
    for lang, commands in COMMANDS.items():
        await bot.set_my_commands([BotCommand(command=c, description=d) for c, d in commands], language_code=lang)


async def warn_if_redis_forgets(redis: Redis) -> None:
    """The feedback outbox is only as durable as Redis: say so at start when Redis does not persist every write."""
    try:
        persistence = await redis_persistence(redis)
    except REDIS_DOWN as exc:
        logger.warning("Redis unreachable at start (%s); its persistence is unchecked", type(exc).__name__)
        return
    if not persistence.durable:
        logger.warning(persistence.message)
