"""The daily pick: every few seconds, send each subscriber whose hour has come one work chosen for their taste.

Postgres holds when each user is due (`daily_subscriptions.next_run_at`), and a due row is claimed — moved a
day ahead — before anything is sent. So a restart neither repeats a pick nor skips a day: the next process
simply claims whatever is due (a crash in the middle of a send loses that one pick; it is never sent twice).

Failures are sorted by whose fault they are. Ours (the inference service, Postgres or Telegram's network is
down) reschedules the user a few minutes later, however long the outage lasts: nobody loses their
subscription to our downtime. Theirs (the user blocked the bot) unsubscribes them. Anything else counts as a
failure, and after `max_failures` in a row the subscription is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from bot.chat import Chat
from bot.inference_client import InferenceUnavailable
from bot.personal import PersonalFlow
from bot.sending import TokenBucket
from bot.texts import language_for
from storage.db import DATABASE_DOWN, UnitOfWork
from storage.repositories import DailyRepository, DailySubscription, next_run

logger = logging.getLogger(__name__)

T = TypeVar("T")

PICK_MESSAGES = 3  # the intro, the work, the like panel: what one pick costs against Telegram's rate limit
RETRY_DELAY = timedelta(minutes=15)
MIN_GAP = timedelta(hours=12)  # a late pick (after an outage) is never followed by the next one sooner than this
BATCH = 50  # claimed at once: a crash loses at most one batch's picks for the day
CONCURRENCY = 8

# Our side is down (or Telegram kept flood-waiting past the send layer's budget): the user is not to blame, so
# reschedule instead of counting a failure.
OUTAGES: tuple[type[BaseException], ...] = (
    TelegramRetryAfter,
    InferenceUnavailable,
    TelegramNetworkError,
    TelegramServerError,
    *DATABASE_DOWN,
)


class Outcome(Enum):
    SENT = "sent"
    RETRY = "retry"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"


@dataclass
class DailyRun:
    """What one round did, for the log and for tests."""

    sent: int = 0
    retry: int = 0
    unsubscribed: int = 0
    failed: int = 0

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    @property
    def total(self) -> int:
        return self.sent + self.retry + self.unsubscribed + self.failed


class DailySender:
    def __init__(
        self,
        bot: Bot,
        uow: UnitOfWork,
        personal: PersonalFlow,
        *,
        max_per_second: float,
        max_failures: int,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
        retry_delay: timedelta = RETRY_DELAY,
    ) -> None:
        self._bot = bot
        self._uow = uow
        self._personal = personal
        self._max_failures = max_failures
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_delay = retry_delay
        # The daily job's share of the bot's Telegram budget (the send layer enforces the whole of it), so that
        # interactive users are not queued behind thousands of picks.
        self._pace = TokenBucket(max_per_second, burst=PICK_MESSAGES)
        # Retries that could not be written because Postgres was down; written at the start of the next round.
        self._unsaved_retries: dict[int, datetime] = {}

    async def run_once(self, now: datetime | None = None) -> DailyRun:
        """Send every pick due at `now` (default: the current time), batch by batch; says what happened."""
        run = DailyRun()
        await self._save_unsaved_retries()
        while True:
            at = now or datetime.now(UTC)
            due = await self._claim(at)
            for outcome in await asyncio.gather(*(self._deliver(sub, at) for sub in due)):
                run.add(outcome)
            if len(due) < self._batch:
                return run

    async def _claim(self, now: datetime) -> list[DailySubscription]:
        """Claim due rows and put each next pick on the user's hour (a retried pick left it off the hour)."""
        async with self._uow() as repo:
            daily = repo.daily
            due = await daily.claim_due(now, self._batch)
            for sub in due:
                regular = next_run(sub.hour, sub.utc_offset_minutes, now + MIN_GAP)
                if sub.next_run_at != regular:
                    await daily.reschedule(sub.user_id, regular)
        return due

    async def _deliver(self, sub: DailySubscription, now: datetime) -> Outcome:
        """One user's pick; whatever goes wrong stays with this user."""
        async with self._slots:
            await self._pace.acquire(PICK_MESSAGES)
            try:
                await self._send(sub.user_id)
            except TelegramForbiddenError:
                logger.info("daily picks: user %s blocked the bot; unsubscribed", sub.user_id)
                await self._update(sub.user_id, "unsubscribe", lambda daily: daily.unsubscribe(sub.user_id))
                return Outcome.UNSUBSCRIBED
            except OUTAGES as exc:
                logger.warning("daily picks: outage (%s); user %s retried later", type(exc).__name__, sub.user_id)
                await self._retry_later(sub.user_id, now)
                return Outcome.RETRY
            except Exception:
                logger.exception("daily picks: pick for user %s failed", sub.user_id)
                dropped = await self._update(
                    sub.user_id, "mark_failed", lambda daily: daily.mark_failed(sub.user_id, self._max_failures)
                )
                return Outcome.UNSUBSCRIBED if dropped else Outcome.FAILED
            await self._update(sub.user_id, "mark_sent", lambda daily: daily.mark_sent(sub.user_id, now))
            return Outcome.SENT

    async def _send(self, user_id: int) -> None:
        async with self._uow() as repo:
            user = await repo.users.get(user_id)
        lang = language_for(user.effective_language if user is not None else None, None)
        await self._personal.daily(Chat(self._bot, chat_id=user_id, user_id=user_id, lang=lang), self._uow)

    async def _update(self, user_id: int, what: str, write: Callable[[DailyRepository], Awaitable[T]]) -> T | None:
        """A bookkeeping write on the subscription; while Postgres is down it is only logged (None)."""
        try:
            async with self._uow() as repo:
                return await write(repo.daily)
        except DATABASE_DOWN as exc:
            logger.warning("daily picks: %s for user %s not written (%s)", what, user_id, type(exc).__name__)
            return None

    async def _retry_later(self, user_id: int, now: datetime) -> None:
        at = now + self._retry_delay
        try:
            async with self._uow() as repo:
                await repo.daily.retry_at(user_id, at)
        except DATABASE_DOWN:
            self._unsaved_retries[user_id] = at  # the claim moved them a day ahead: keep today's pick alive

    async def _save_unsaved_retries(self) -> None:
        for user_id, at in list(self._unsaved_retries.items()):
            try:
                async with self._uow() as repo:
                    await repo.daily.retry_at(user_id, at)
            except DATABASE_DOWN:
                return
            del self._unsaved_retries[user_id]
