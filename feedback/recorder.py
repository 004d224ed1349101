"""Writes votes and likes so that none is lost: Postgres when it is up, a durable Redis outbox when it is not.

Ownership is checked before anything is written: a vote or like counts only for an analysis (or personal
suggestion) that was shown to the same user, and a like only for a work that was in it. The check reads a
short-lived Redis record first (so it works while Postgres restarts) and falls back to Postgres (so it works
while Redis restarts; storage.cache answers "unknown" when Redis is away).

`forget` is the other direction: it deletes a user's data everywhere it lives (Postgres, the outbox, the
ownership records, the cached analyses of their photos), so nothing of theirs can come back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum
from typing import Any

from feedback.metrics import count_like, count_vote
from inference.contract import VOTE_CHOICES, ArenaMode, Side, VoteChoice
from storage.cache import AnalysisCache, FeedbackOutbox, ShownAnalysisRegistry
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import LIKE_VALUES, ForgottenUser, SuggestionView

logger = logging.getLogger(__name__)


class Outcome(Enum):
    SAVED = "saved"
    UNCHANGED = "unchanged"
    QUEUED = "queued"
    REFUSED = "refused"


@dataclass(frozen=True)
class ShownAnalysis:
    analysis_id: int
    user_id: int
    sets: dict[Side, list[int]]
    mode: ArenaMode = "sides"  # "interleaved": one merged set, credited from likes, no vote
    display_ids: list[int] | None = None  # interleaved: the merged order the user saw

    @property
    def artwork_ids(self) -> set[int]:
        return {artwork_id for ids in self.sets.values() for artwork_id in ids}


class FeedbackRecorder:
    def __init__(
        self,
        uow: UnitOfWork,
        outbox: FeedbackOutbox,
        shown: ShownAnalysisRegistry,
        suggested: ShownAnalysisRegistry,
        analyses: AnalysisCache,
    ) -> None:
        self._uow = uow
        self._outbox = outbox
        self._shown = shown
        self._suggested = suggested
        self._analyses = analyses

    @property
    def outbox(self) -> FeedbackOutbox:
        """Where events wait while Postgres is down (its length and dead letters are metrics)."""
        return self._outbox

    async def remember_shown(self, analysis: ShownAnalysis) -> None:
        await self._shown.remember(
            analysis.analysis_id, analysis.user_id, analysis.sets, analysis.mode, analysis.display_ids
        )

    async def remember_suggestion(self, suggestion_id: int, user_id: int, artwork_ids: list[int]) -> None:
        await self._suggested.remember(suggestion_id, user_id, {"items": artwork_ids})

    async def shown_to(self, analysis_id: int, user_id: int) -> ShownAnalysis | None:
        """The analysis if it was shown to this user, else None (forged or someone else's button)."""
        record = await self._shown.get(analysis_id)
        if record is not None:
            if int(record["user_id"]) != user_id:
                return None
            sets = {side: list(ids) for side, ids in record["sets"].items()}
            display = record.get("display_ids")
            mode: ArenaMode = "interleaved" if record.get("mode") == "interleaved" else "sides"
            return ShownAnalysis(analysis_id, user_id, sets, mode, None if display is None else list(display))
        async with self._uow() as repo:
            view = await repo.analyses.get_for_user(analysis_id, user_id)
        if view is None:
            return None
        sets = {s.side: list(s.artwork_ids) for s in view.sets}
        display = None if view.display_ids is None else list(view.display_ids)
        return ShownAnalysis(analysis_id, user_id, sets, view.mode, display)

    async def suggested_to(self, suggestion_id: int, user_id: int) -> set[int] | None:
        """The works of this suggestion if it was sent to this user, else None."""
        record = await self._suggested.get(suggestion_id)
        if record is not None:
            if int(record["user_id"]) != user_id:
                return None
            return {int(i) for ids in record["sets"].values() for i in ids}
        view = await self.suggestion(suggestion_id, user_id)
        return None if view is None else set(view.artwork_ids)

    async def suggestion(self, suggestion_id: int, user_id: int) -> SuggestionView | None:
        """The stored suggestion (kind and order, to redraw its buttons) if it is this user's."""
        async with self._uow() as repo:
            return await repo.suggestions.get_for_user(suggestion_id, user_id)

    async def vote(self, user_id: int, analysis_id: int, choice: VoteChoice) -> Outcome:
        outcome = await self._vote(user_id, analysis_id, choice)
        count_vote(choice, outcome.value, VOTE_CHOICES)
        return outcome

    async def _vote(self, user_id: int, analysis_id: int, choice: VoteChoice) -> Outcome:
        if choice not in VOTE_CHOICES:  # typed, but a caller's value may still come from a stranger
            return Outcome.REFUSED
        shown = await self.shown_to(analysis_id, user_id)
        # An interleaved set is credited from likes, not votes; a single set (a colour search) has nothing to pit.
        if shown is None or shown.mode != "sides" or len(shown.sets) < 2:
            return Outcome.REFUSED
        event = {"kind": "vote", "user_id": user_id, "analysis_id": analysis_id, "choice": choice}
        return await self._write_or_queue(event)

    async def like(self, user_id: int, analysis_id: int, artwork_id: int, value: int) -> Outcome:
        outcome = await self._like(user_id, analysis_id, artwork_id, value)
        count_like(value, outcome.value)
        return outcome

    async def _like(self, user_id: int, analysis_id: int, artwork_id: int, value: int) -> Outcome:
        if value not in LIKE_VALUES:
            return Outcome.REFUSED
        shown = await self.shown_to(analysis_id, user_id)
        if shown is None or artwork_id not in shown.artwork_ids:
            return Outcome.REFUSED
        event = {
            "kind": "like",
            "user_id": user_id,
            "analysis_id": analysis_id,
            "artwork_id": artwork_id,
            "value": value,
        }
        return await self._write_or_queue(event)

    async def like_suggestion(self, user_id: int, suggestion_id: int, artwork_id: int, value: int) -> Outcome:
        outcome = await self._like_suggestion(user_id, suggestion_id, artwork_id, value)
        count_like(value, outcome.value)
        return outcome

    async def _like_suggestion(self, user_id: int, suggestion_id: int, artwork_id: int, value: int) -> Outcome:
        if value not in LIKE_VALUES:
            return Outcome.REFUSED
        works = await self.suggested_to(suggestion_id, user_id)
        if works is None or artwork_id not in works:
            return Outcome.REFUSED
        event = {
            "kind": "like",
            "user_id": user_id,
            "analysis_id": None,
            "suggestion_id": suggestion_id,
            "artwork_id": artwork_id,
            "value": value,
        }
        return await self._write_or_queue(event)

    async def remove_like(self, user_id: int, artwork_id: int) -> Outcome:
        """Take back one's own ❤️ (💔 under /likes): written or queued like any undo, so the taste profile
        follows. Nothing to check: it only ever touches the presser's own row, and only a ❤️ (a 👎 set since
        the /likes page was sent stays). UNCHANGED when that work was not liked."""
        outcome = await self._write_or_queue({"kind": "unlike", "user_id": user_id, "artwork_id": artwork_id})
        count_like("unlike", outcome.value)
        return outcome

    async def forget(self, user_id: int) -> ForgottenUser | None:
        """Delete the user's rows in one transaction, then their queued events, ownership records and the cached
        analyses of their photos.

        Raises a DATABASE_DOWN error when Postgres is unreachable, and a REDIS_DOWN error when the outbox is: in
        both cases nothing at all was deleted (the outbox is looked at before any row goes, so a Redis outage
        cannot leave rows deleted and queued events behind while the user is told to try again).
        """
        await self._outbox.size()
        async with self._uow() as repo:
            forgotten = await repo.users.forget(user_id)
        await self._outbox.discard(lambda event: event.get("user_id") == user_id)
        if forgotten is not None:
            await self._shown.forget(forgotten.analysis_ids)
            await self._suggested.forget(forgotten.suggestion_ids)
            await self._analyses.forget(forgotten.image_sha256s)
        return forgotten

    async def current_likes(self, user_id: int, artwork_ids: set[int]) -> dict[int, int]:
        """Marks to draw on the buttons; an empty answer while the database is down is acceptable."""
        try:
            async with self._uow() as repo:
                likes = await repo.likes.for_user(user_id)
        except DATABASE_DOWN:
            return {}
        return {artwork_id: value for artwork_id, value in likes.items() if artwork_id in artwork_ids}

    async def current_vote(self, user_id: int, analysis_id: int) -> str | None:
        """The stored vote, to mark on the buttons; None while the database is down."""
        try:
            async with self._uow() as repo:
                return await repo.votes.get(user_id, analysis_id)
        except DATABASE_DOWN:
            return None

    async def flush_outbox(self) -> int:
        """Replay events queued while Postgres was down; stops at the first failure and keeps that event."""
        try:
            flushed = await self._outbox.drain(self._apply)
        except DATABASE_DOWN:
            return 0
        if flushed:
            logger.info("outbox: %d queued feedback events written", flushed)
        return flushed

    async def _write_or_queue(self, event: dict[str, Any]) -> Outcome:
        try:
            changed = await self._apply(event)
        except DATABASE_DOWN as exc:
            logger.warning("database unavailable (%s); %s queued in the outbox", type(exc).__name__, event["kind"])
            await self._outbox.push(event)
            return Outcome.QUEUED
        return Outcome.SAVED if changed else Outcome.UNCHANGED

    async def _apply(self, event: dict[str, Any]) -> bool:
        async with self._uow() as repo:
            if event["kind"] == "vote":
                return await repo.votes.upsert(event["user_id"], event["analysis_id"], event["choice"])
            if event["kind"] == "unlike":
                return await repo.likes.unlike(event["user_id"], event["artwork_id"])
            return await repo.likes.set(
                event["user_id"],
                event["artwork_id"],
                event["value"],
                event.get("analysis_id"),
                event.get("suggestion_id"),
            )
