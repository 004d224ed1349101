"""One photo's journey: the arena picks two recommenders, their sets and the description are shown as they
become ready (the CLIP-only set first), then the vote panel (or, in interleaving mode, one merged set).

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
from bot.arena import FAST_RECOMMENDER, Arena, Matchup
from bot.inference_client import REQUEST_ERRORS, ImageRefused, InferenceClient, InferenceUnavailable
from bot.keyboards import SIDE_LABELS, feedback_keyboard
from bot.personal import load_history
from bot.texts import t
from feedback.arena.interleaving import team_draft
from feedback.recorder import DATABASE_DOWN, FeedbackRecorder, ShownAnalysis
from storage.cache import AnalysisCache
from storage.repositories import Repo, ShownSet

logger = logging.getLogger(__name__)

REFUSAL_TEXTS = {
    "empty": "empty_file",
    "too_large": "too_big",
    "too_many_pixels": "too_many_pixels",
    "unsupported_format": "unsupported_format",
}

Hits = list[dict[str, Any]]


@dataclass
class AnalysisDeps:
    """Long-lived collaborators, created once in bot/app.py."""

    inference: InferenceClient
    pool: asyncpg.Pool
    cache: AnalysisCache
    recorder: FeedbackRecorder
    top_k: int
    arena: Arena
    # Bounds photos in flight: a burst queues here instead of starving the event loop and the database pool.
    in_flight: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(16))


@dataclass
class Shown:
    """What the user saw: each recommender's hits, the description, and (interleaved) the merged order."""

    hits: dict[str, Hits]
    description: str
    models: dict[str, Any]
    display: Hits | None = None
    uploaded: dict[int, str] = field(default_factory=dict)


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
    events = await _taste_events(deps, user_id)
    matchup = await deps.arena.matchup(rng, has_profile=bool(events))
    cached = await _cached(deps.cache, sha256)
    try:
        async with ChatActionSender.upload_photo(bot=bot, chat_id=chat_id):
            shown = await _show(bot, chat_id, image, sha256, lang, deps, matchup, cached, events, rng)
    except ImageRefused as refusal:
        await bot.send_message(chat_id, t(lang, REFUSAL_TEXTS.get(refusal.code, "not_an_image")))
        return None
    except InferenceUnavailable as down:
        if str(down) in REQUEST_ERRORS:
            deps.arena.invalidate()
        if down.retry_after:
            await bot.send_message(chat_id, t(lang, "service_busy", seconds=down.retry_after))
        else:
            await bot.send_message(chat_id, t(lang, "service_down"))
        return None
    if shown is None:
        return None

    sets = {matchup.sides[name]: [int(h["artwork_id"]) for h in hits] for name, hits in shown.hits.items()}
    display_ids = None if shown.display is None else [int(h["artwork_id"]) for h in shown.display]
    try:
        analysis_id = await _store(
            deps.pool,
            user_id=user_id,
            sha256=sha256,
            shown=shown,
            matchup=matchup,
            display_ids=display_ids,
            latency_ms=int((time.perf_counter() - started) * 1000),
            from_cache=cached is not None and not _missing(matchup, cached, deps.arena),
        )
    except DATABASE_DOWN as exc:
        logger.warning("analysis not stored: database unavailable (%s)", type(exc).__name__)
        await bot.send_message(chat_id, t(lang, "not_saved"))
        return None
    remembered = ShownAnalysis(analysis_id, user_id, sets, matchup.mode, display_ids)
    await deps.recorder.remember_shown(remembered)
    likes = await deps.recorder.current_likes(user_id, remembered.artwork_ids)
    question = "ask_likes_interleaved" if display_ids is not None else "ask_vote"
    await bot.send_message(
        chat_id,
        t(lang, question),
        reply_markup=feedback_keyboard(lang, analysis_id, sets, likes, display_ids=display_ids),
    )
    return analysis_id


async def _show(
    bot: Bot,
    chat_id: int,
    image: bytes,
    sha256: str,
    lang: str,
    deps: AnalysisDeps,
    matchup: Matchup,
    cached: dict[str, Any] | None,
    events: list[dict[str, Any]],
    rng: random.Random,
) -> Shown | None:
    """Send the albums and the description in the order they become ready; None if the user was told why not.

    The fast recommender's album (CLIP only) goes out as soon as /v1/look answers, while the slow ones
    (description first) are still being computed; recommenders already in the photo's cache cost nothing.
    """
    have: dict[str, Hits] = dict((cached or {}).get("recommendations", {}))
    fast = FAST_RECOMMENDER if FAST_RECOMMENDER in matchup.names and matchup.mode == "sides" else None
    missing = [name for name in _missing(matchup, cached, deps.arena) if name != fast]  # fast: via /v1/look
    full_task = None
    if missing:
        feedback = events if any(deps.arena.is_personal(name) for name in missing) else None
        full_task = asyncio.create_task(deps.inference.analyze(image, deps.top_k, missing, feedback))
    shown = Shown(
        hits={},
        description=str((cached or {}).get("description", "")),
        models=dict((cached or {}).get("models", {})),
    )
    known: dict[int, str] = {}
    try:
        if fast is not None:
            if fast not in have:
                have[fast] = (await deps.inference.look(image, deps.top_k))["recommendations"][fast]
            shown.hits[fast] = have[fast]
            await _send_album(bot, chat_id, SIDE_LABELS[matchup.sides[fast]], have[fast], known, deps, shown)
        if full_task is not None:
            try:
                full = await full_task
            except InferenceUnavailable:
                if fast is None:
                    raise
                await bot.send_message(chat_id, t(lang, "description_failed"))
                return None
            shown.description = full.get("description") or shown.description
            shown.models = full.get("models") or shown.models
            fresh = full["recommendations"]
            have.update({name: fresh[name] for name in missing})
    except BaseException:
        if full_task is not None:
            full_task.cancel()
        raise
    if have != (cached or {}).get("recommendations", {}):
        await _store_in_cache(deps.cache, sha256, shown, have, deps.arena)
    await bot.send_message(chat_id, t(lang, "description", description=shown.description))
    if matchup.mode == "interleaved":
        merged = team_draft(_ids(have[matchup.left]), _ids(have[matchup.right]), deps.top_k, rng)
        by_id = {int(h["artwork_id"]): h for name in matchup.names for h in have[name]}
        shown.display = [by_id[i] for i in merged.artwork_ids]
        shown.hits = {
            matchup.left: [by_id[i] for i in merged.ids_of("a")],
            matchup.right: [by_id[i] for i in merged.ids_of("b")],
        }
        await _send_album(bot, chat_id, "", shown.display, known, deps, shown)
        return shown
    for name in matchup.names:
        if name not in shown.hits:
            shown.hits[name] = have[name]
            await _send_album(bot, chat_id, SIDE_LABELS[matchup.sides[name]], have[name], known, deps, shown)
    return shown


def _ids(hits: Hits) -> list[int]:
    return [int(h["artwork_id"]) for h in hits]


def _missing(matchup: Matchup, cached: dict[str, Any] | None, arena: Arena) -> list[str]:
    """Recommenders to ask the service for: personal ones always (never cached), others unless cached."""
    have = (cached or {}).get("recommendations", {})
    return [name for name in matchup.names if arena.is_personal(name) or name not in have]


async def _send_album(
    bot: Bot, chat_id: int, label: str, hits: Hits, known: dict[int, str], deps: AnalysisDeps, shown: Shown
) -> None:
    known.update(await _known_file_ids(deps.pool, hits))
    uploaded = await send_set(bot, chat_id, label, hits, known, deps.inference)
    known.update(uploaded)
    shown.uploaded.update(uploaded)


async def _taste_events(deps: AnalysisDeps, user_id: int) -> list[dict[str, Any]]:
    """The user's feedback for personal recommenders; none (so no personal matchup) while Postgres is away."""
    try:
        history = await load_history(deps.pool, user_id, with_seen=False)
    except DATABASE_DOWN:
        return []
    return history.events if history.likes else []


async def _cached(cache: AnalysisCache, sha256: str) -> dict[str, Any] | None:
    try:
        return await cache.get(sha256)
    except Exception:  # the cache is an optimisation: never fail a user because Redis hiccupped
        logger.warning("analysis cache read failed", exc_info=True)
        return None


async def _store_in_cache(
    cache: AnalysisCache, sha256: str, shown: Shown, have: dict[str, Hits], arena: Arena
) -> None:
    """Everything now known about this photo but the personal sets (those are per user, never shared)."""
    entry = {
        "description": shown.description,
        "models": shown.models,
        "recommendations": {name: hits for name, hits in have.items() if not arena.is_personal(name)},
    }
    try:
        await cache.put(sha256, entry)
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
    shown: Shown,
    matchup: Matchup,
    display_ids: list[int] | None,
    latency_ms: int,
    from_cache: bool,
) -> int:
    """The analysis, its two sets (or interleaved teams), the works and their new file_ids: one transaction."""
    records = {h["artwork_id"]: artwork_record(h) for hits in shown.hits.values() for h in hits}
    async with pool.acquire(timeout=5) as conn, conn.transaction():
        repo = Repo(conn)
        await repo.artworks.upsert_many(list(records.values()))
        for artwork_id, file_id in shown.uploaded.items():
            await repo.artworks.set_file_id(artwork_id, file_id)
        return await repo.analyses.create(
            user_id=user_id,
            image_sha256=sha256,
            description=shown.description,
            model_versions=shown.models,
            latency_ms=latency_ms,
            from_cache=from_cache,
            sets=[
                ShownSet(recommender=name, side=matchup.sides[name], artwork_ids=_ids(hits))  # type: ignore[arg-type]
                for name, hits in shown.hits.items()
            ],
            mode=matchup.mode,
            display_ids=display_ids,
        )
