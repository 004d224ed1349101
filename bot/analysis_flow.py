"""One photo's journey: visual set first, then description and the meaning set, then the vote panel.

Nothing is written to Postgres until everything has been shown; then the analysis, its two shown sets and the
artworks go in one transaction. If any step fails the user is told and can resend the photo.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender

from bot.albums import artwork_record, send_set
from bot.inference_client import ImageRefused, InferenceClient, InferenceUnavailable
from bot.keyboards import SIDE_LABELS, feedback_keyboard
from bot.texts import t
from feedback.recorder import DATABASE_DOWN, FeedbackRecorder, ShownAnalysis
from storage.cache import AnalysisCache
from storage.repositories import Repo, ShownSet

logger = logging.getLogger(__name__)

RECOMMENDERS = ("by_look", "by_meaning")
REFUSAL_TEXTS = {
    "empty": "empty_file",
    "too_large": "too_big",
    "too_many_pixels": "too_many_pixels",
    "unsupported_format": "unsupported_format",
}


@dataclass
class AnalysisDeps:
    """Long-lived collaborators, created once in bot/__main__.py."""

    inference: InferenceClient
    pool: asyncpg.Pool
    cache: AnalysisCache
    recorder: FeedbackRecorder
    top_k: int
    # Bounds photos in flight: a burst queues here instead of starving the event loop and the database pool.
    in_flight: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))


def assign_sides(rng: random.Random) -> dict[str, str]:
    """Which recommender is A (left button) and which B: random per analysis, to cancel position bias."""
    first, second = rng.sample(RECOMMENDERS, 2)
    return {first: "left", second: "right"}


async def answer_photo(
    bot: Bot, chat_id: int, user_id: int, image: bytes, lang: str, deps: AnalysisDeps, rng: random.Random
) -> int | None:
    """Run the whole flow; return the stored analysis id, or None when the user was told why not."""
    async with deps.in_flight:
        return await _answer_photo(bot, chat_id, user_id, image, lang, deps, rng)


async def _answer_photo(
    bot: Bot, chat_id: int, user_id: int, image: bytes, lang: str, deps: AnalysisDeps, rng: random.Random
) -> int | None:
    started = time.perf_counter()
    sha256 = hashlib.sha256(image).hexdigest()
    sides = assign_sides(rng)
    cached = await _cached(deps.cache, sha256)
    known_file_ids: dict[int, str] = {}

    try:
        async with ChatActionSender.upload_photo(bot=bot, chat_id=chat_id):
            if cached is not None:
                full = cached
                look_hits = full["recommendations"]["by_look"]
            else:
                full_task = asyncio.create_task(deps.inference.analyze(image, deps.top_k))
                try:
                    look = await deps.inference.look(image, deps.top_k)
                except BaseException:
                    full_task.cancel()
                    raise
                look_hits = look["recommendations"]["by_look"]
            known_file_ids.update(await _known_file_ids(deps.pool, look_hits))
            uploaded = await send_set(
                bot, chat_id, SIDE_LABELS[sides["by_look"]], look_hits, known_file_ids, deps.inference
            )
            known_file_ids.update(uploaded)
            if cached is None:
                try:
                    full = await full_task
                except InferenceUnavailable:
                    await bot.send_message(chat_id, t(lang, "description_failed"))
                    return None
                await _store_in_cache(deps.cache, sha256, full)
            await bot.send_message(chat_id, t(lang, "description", description=full["description"]))
            meaning_hits = full["recommendations"]["by_meaning"]
            known_file_ids.update(await _known_file_ids(deps.pool, meaning_hits))
            uploaded_meaning = await send_set(
                bot, chat_id, SIDE_LABELS[sides["by_meaning"]], meaning_hits, known_file_ids, deps.inference
            )
            uploaded.update(uploaded_meaning)
    except ImageRefused as refusal:
        await bot.send_message(chat_id, t(lang, REFUSAL_TEXTS.get(refusal.code, "not_an_image")))
        return None
    except InferenceUnavailable as down:
        if down.retry_after:
            await bot.send_message(chat_id, t(lang, "service_busy", seconds=down.retry_after))
        else:
            await bot.send_message(chat_id, t(lang, "service_down"))
        return None

    hits_by_recommender = {"by_look": look_hits, "by_meaning": meaning_hits}
    sets = {sides[name]: [int(h["artwork_id"]) for h in hits] for name, hits in hits_by_recommender.items()}
    try:
        analysis_id = await _store(
            deps.pool,
            user_id=user_id,
            sha256=sha256,
            full=full,
            hits_by_recommender=hits_by_recommender,
            sides=sides,
            uploaded=uploaded,
            latency_ms=int((time.perf_counter() - started) * 1000),
            from_cache=cached is not None,
        )
    except DATABASE_DOWN as exc:
        logger.warning("analysis not stored: database unavailable (%s)", type(exc).__name__)
        await bot.send_message(chat_id, t(lang, "not_saved"))
        return None
    shown = ShownAnalysis(analysis_id, user_id, sets)
    await deps.recorder.remember_shown(shown)
    likes = await deps.recorder.current_likes(user_id, shown.artwork_ids)
    await bot.send_message(
        chat_id, t(lang, "ask_vote"), reply_markup=feedback_keyboard(lang, analysis_id, sets, likes)
    )
    return analysis_id


async def _cached(cache: AnalysisCache, sha256: str) -> dict[str, Any] | None:
    try:
        return await cache.get(sha256)
    except Exception:  # the cache is an optimisation: never fail a user because Redis hiccupped
        logger.warning("analysis cache read failed", exc_info=True)
        return None


async def _store_in_cache(cache: AnalysisCache, sha256: str, full: dict[str, Any]) -> None:
    try:
        await cache.put(sha256, full)
    except Exception:
        logger.warning("analysis cache write failed", exc_info=True)


async def _known_file_ids(pool: asyncpg.Pool, hits: list[dict[str, Any]]) -> dict[int, str]:
    """Cached Telegram file_ids of these works; an empty map while the database is down means re-uploading."""
    try:
        async with pool.acquire(timeout=5) as conn:
            return await Repo(conn).artworks.get_file_ids([int(h["artwork_id"]) for h in hits])
    except DATABASE_DOWN:
        return {}


async def _store(
    pool: asyncpg.Pool,
    *,
    user_id: int,
    sha256: str,
    full: dict[str, Any],
    hits_by_recommender: dict[str, list[dict[str, Any]]],
    sides: dict[str, str],
    uploaded: dict[int, str],
    latency_ms: int,
    from_cache: bool,
) -> int:
    records = {h["artwork_id"]: artwork_record(h) for hits in hits_by_recommender.values() for h in hits}
    async with pool.acquire(timeout=5) as conn, conn.transaction():
        repo = Repo(conn)
        await repo.artworks.upsert_many(list(records.values()))
        for artwork_id, file_id in uploaded.items():
            await repo.artworks.set_file_id(artwork_id, file_id)
        return await repo.analyses.create(
            user_id=user_id,
            image_sha256=sha256,
            description=full["description"],
            model_versions=full.get("models", {}),
            latency_ms=latency_ms,
            from_cache=from_cache,
            sets=[
                ShownSet(recommender=name, side=sides[name], artwork_ids=[int(h["artwork_id"]) for h in hits])
                for name, hits in hits_by_recommender.items()
            ],
        )
