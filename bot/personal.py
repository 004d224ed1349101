"""Personal suggestions: /foryou, the onboarding sample for new users, and the daily pick share this flow.

The bot owns the user's history (Postgres); the inference service owns the vectors. So the bot sends the
feedback events and the works already seen, and the service builds the taste profile and ranks. A suggestion
is stored after its album was sent (like an analysis), so a like on it can be checked for ownership.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import asyncpg
from aiogram import Bot

from bot.albums import artwork_record, caption_for, send_set
from bot.keyboards import suggestion_keyboard
from bot.texts import t
from feedback.taste import FeedbackEvent, events_from_vote
from storage.repositories import Repo

if TYPE_CHECKING:  # the photo flow imports this module: only the type goes the other way
    from bot.analysis_flow import AnalysisDeps

logger = logging.getLogger(__name__)

MAX_EVENTS = 2000  # the service's limit; the most recent feedback is kept
MAX_EXCLUDED = 20_000
ONBOARDING_SIZE = 8


@dataclass(frozen=True)
class History:
    """What the service needs to know about a user to personalise: JSON-ready events and works seen."""

    events: list[dict[str, Any]]
    seen: list[int]
    likes: int  # works marked ❤️ (a profile needs at least one)


def _age_days(at: datetime, now: datetime) -> float:
    return max(0.0, (now - at).total_seconds() / 86400.0)


async def load_history(
    pool: asyncpg.Pool, user_id: int, now: datetime | None = None, *, with_seen: bool = True
) -> History:
    """Likes count fully, votes a little (the chosen set's works were somewhat to the user's taste).

    A user with no ❤️ has no profile yet, so their votes are not read; the photo flow skips `seen` too.
    """
    now = now or datetime.now(UTC)
    async with pool.acquire(timeout=5) as conn:
        history = Repo(conn).history
        likes = await history.likes(user_id)
        liked = sum(1 for like in likes if like.value > 0)
        votes = await history.votes(user_id) if liked else []
        seen = await history.seen_artwork_ids(user_id) if with_seen else set()
    events = [FeedbackEvent(like.artwork_id, float(like.value), _age_days(like.at, now)) for like in likes]
    for vote in votes:
        events.extend(events_from_vote(vote.left_ids, vote.right_ids, vote.choice, _age_days(vote.at, now)))
    return History(
        events=[asdict(event) for event in events[:MAX_EVENTS]],
        seen=sorted(seen)[-MAX_EXCLUDED:],
        likes=liked,
    )


def suggestion_caption(lang: str, position: int, item: dict[str, Any]) -> str:
    """`1 · title — artist, year` and one short line saying why: because you liked X, or something new."""
    caption = caption_for("", position, item)
    because = item.get("because")
    if isinstance(because, dict) and because.get("title"):
        caption += "\n" + t(lang, "because_you_liked", title=because["title"])
    elif item.get("explored"):
        caption += "\n" + t(lang, "something_new")
    return caption


async def send_suggestions(
    bot: Bot,
    chat_id: int,
    user_id: int,
    lang: str,
    deps: AnalysisDeps,
    *,
    kind: Literal["foryou", "daily"],
    k: int,
    exploration: float,
) -> int | None:
    """Send `k` fresh works ranked for this user, then a like panel; returns the suggestion id.

    Raises InferenceUnavailable / DATABASE_DOWN errors for the caller to explain; returns None (after telling
    the user) when the gallery has nothing left they have not seen.
    """
    history = await load_history(deps.pool, user_id)
    body = await deps.inference.suggest(history.events, history.seen, k, exploration=exploration)
    items = list(body.get("suggestions", []))[:k]
    if not items:
        await bot.send_message(chat_id, t(lang, "nothing_new"))
        return None
    if kind == "daily":
        await bot.send_message(chat_id, t(lang, "daily_intro"))
    captions = [suggestion_caption(lang, position, item) for position, item in enumerate(items, start=1)]
    because = {
        int(item["artwork_id"]): int(item["because"]["artwork_id"])
        for item in items
        if isinstance(item.get("because"), dict)
    }
    return await _send_and_store(bot, chat_id, user_id, lang, deps, kind, items, captions, because)


async def send_onboarding(bot: Bot, chat_id: int, user_id: int, lang: str, deps: AnalysisDeps) -> int | None:
    """A new user picks a few works they like from a diverse sample; that seeds their taste profile."""
    history = await load_history(deps.pool, user_id)
    items = await deps.inference.onboarding(ONBOARDING_SIZE, history.seen)
    if not items:
        await bot.send_message(chat_id, t(lang, "nothing_new"))
        return None
    await bot.send_message(chat_id, t(lang, "onboarding_intro"))
    captions = [caption_for("", position, item) for position, item in enumerate(items, start=1)]
    return await _send_and_store(bot, chat_id, user_id, lang, deps, "onboarding", items, captions, {})


async def _send_and_store(
    bot: Bot,
    chat_id: int,
    user_id: int,
    lang: str,
    deps: AnalysisDeps,
    kind: Literal["foryou", "daily", "onboarding"],
    items: list[dict[str, Any]],
    captions: list[str],
    because: dict[int, int],
) -> int:
    ids = [int(item["artwork_id"]) for item in items]
    async with deps.pool.acquire(timeout=5) as conn:
        known = await Repo(conn).artworks.get_file_ids(ids)
    uploaded = await send_set(bot, chat_id, "", items, known, deps.inference, captions=captions)
    async with deps.pool.acquire(timeout=5) as conn, conn.transaction():
        repo = Repo(conn)
        await repo.artworks.upsert_many([artwork_record(item) for item in items])
        for artwork_id, file_id in uploaded.items():
            await repo.artworks.set_file_id(artwork_id, file_id)
        suggestion_id = await repo.suggestions.create(user_id, kind, ids, because)
    await deps.recorder.remember_suggestion(suggestion_id, user_id, ids)
    panel = {"onboarding": "onboarding_panel", "foryou": "foryou_panel", "daily": "daily_panel"}[kind]
    await bot.send_message(
        chat_id, t(lang, panel), reply_markup=suggestion_keyboard(lang, suggestion_id, kind, ids, {})
    )
    return suggestion_id
