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
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
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

from bot.analysis_flow import AnalysisDeps
from bot.inference_client import InferenceUnavailable
from bot.personal import send_suggestions
from bot.settings import BotSettings
from bot.texts import language_for
from feedback.recorder import DATABASE_DOWN
from storage.repositories import DailyRepository, DailySubscription, Repo, next_run

logger = logging.getLogger(__name__)

T = TypeVar("T")

PICK_MESSAGES = 3  # the intro, the work, the like panel: what one pick costs against Telegram's rate limit
RETRY_DELAY = timedelta(minutes=15)
MIN_GAP = timedelta(hours=12)  # a late pick (after an outage) is never followed by the next one sooner than this
BATCH = 50  # claimed at once: a crash loses at most one batch's picks for the day
CONCURRENCY = 8
MAX_FLOOD_WAITS = 5  # Telegram flood-waits for one user before giving up on them until the next retry

# Our side is down: the user is not to blame, so reschedule instead of counting a failure.
OUTAGES: tuple[type[BaseException], ...] = (
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


class Pacer:
    """Spaces sends evenly under a rate; a flood-wait from Telegram pauses every sender at once."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / per_second
        self._clock = clock
        self._next = 0.0
        self._paused_until = 0.0

    async def wait(self) -> None:
        while True:
            now = self._clock()
            if self._paused_until > now:
                await asyncio.sleep(self._paused_until - now)
                continue
            slot = max(now, self._next)
            self._next = slot + self._interval
            if slot > now:
                await asyncio.sleep(slot - now)
            if self._paused_until <= self._clock():  # not paused while we slept: our slot stands
                return

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + seconds)


class DailySender:
    def __init__(
        self,
        bot: Bot,
        deps: AnalysisDeps,
        *,
        exploration: float,
        max_per_second: float,
        max_failures: int,
        batch: int = BATCH,
        concurrency: int = CONCURRENCY,
        retry_delay: timedelta = RETRY_DELAY,
    ) -> None:
        self._bot = bot
        self._deps = deps
        self._exploration = exploration
        self._max_failures = max_failures
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._retry_delay = retry_delay
        self._pacer = Pacer(max_per_second / PICK_MESSAGES)
        # Retries that could not be written because Postgres was down; written at the start of the next round.
        self._unsaved_retries: dict[int, datetime] = {}

    @classmethod
    def from_settings(cls, bot: Bot, deps: AnalysisDeps, settings: BotSettings) -> DailySender:
        return cls(
            bot,
            deps,
            exploration=settings.foryou_exploration,
            max_per_second=settings.daily_max_per_second,
            max_failures=settings.daily_max_failures,
        )

    async def run_forever(self, poll_s: float) -> None:
        """Rounds every `poll_s` seconds until cancelled; a failing round is logged, never fatal."""
        while True:
            try:
                run = await self.run_once()
                if run.total:
                    logger.info("daily picks: %s", run)
            except Exception:
                logger.warning("daily picks: round failed; will retry", exc_info=True)
            await asyncio.sleep(poll_s)

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
        async with self._deps.pool.acquire(timeout=5) as conn, conn.transaction():
            daily = Repo(conn).daily
            due = await daily.claim_due(now, self._batch)
            for sub in due:
                regular = next_run(sub.hour, sub.utc_offset_minutes, now + MIN_GAP)
                if sub.next_run_at != regular:
                    await daily.reschedule(sub.user_id, regular)
        return due

    async def _deliver(self, sub: DailySubscription, now: datetime) -> Outcome:
        """One user's pick; whatever goes wrong stays with this user."""
        async with self._slots:
            for _ in range(MAX_FLOOD_WAITS):
                await self._pacer.wait()
                try:
                    await self._send(sub.user_id)
                except TelegramRetryAfter as flood:
                    logger.warning("daily picks: Telegram asks to wait %s s", flood.retry_after)
                    self._pacer.pause(flood.retry_after)
                    continue
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
            await self._retry_later(sub.user_id, now)
            return Outcome.RETRY

    async def _send(self, user_id: int) -> None:
        async with self._deps.pool.acquire(timeout=5) as conn:
            user = await Repo(conn).users.get(user_id)
        lang = language_for(user.effective_language if user is not None else None, None)
        await send_suggestions(
            self._bot,
            chat_id=user_id,
            user_id=user_id,
            lang=lang,
            deps=self._deps,
            kind="daily",
            k=1,
            exploration=self._exploration,
        )

    async def _update(self, user_id: int, what: str, write: Callable[[DailyRepository], Awaitable[T]]) -> T | None:
        """A bookkeeping write on the subscription; while Postgres is down it is only logged (None)."""
        try:
            async with self._deps.pool.acquire(timeout=5) as conn:
                return await write(Repo(conn).daily)
        except DATABASE_DOWN as exc:
            logger.warning("daily picks: %s for user %s not written (%s)", what, user_id, type(exc).__name__)
            return None

    async def _retry_later(self, user_id: int, now: datetime) -> None:
        at = now + self._retry_delay
        try:
            async with self._deps.pool.acquire(timeout=5) as conn:
                await Repo(conn).daily.retry_at(user_id, at)
        except DATABASE_DOWN:
            self._unsaved_retries[user_id] = at  # the claim moved them a day ahead: keep today's pick alive

    async def _save_unsaved_retries(self) -> None:
        for user_id, at in list(self._unsaved_retries.items()):
            try:
                async with self._deps.pool.acquire(timeout=5) as conn:
                    await Repo(conn).daily.retry_at(user_id, at)
            except DATABASE_DOWN:
                return
            del self._unsaved_retries[user_id]


@contextlib.asynccontextmanager
async def daily_picks(sender: DailySender, poll_s: float) -> AsyncIterator[asyncio.Task[None]]:
    """Run the sender next to the bot's other background jobs; cancelled (mid-round is fine) on exit."""
    task = asyncio.create_task(sender.run_forever(poll_s))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
