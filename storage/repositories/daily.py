"""Daily-pick subscriptions. The next send time lives in Postgres, so a restart neither skips nor repeats a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.db import Connection

_COLUMNS = "user_id, hour, utc_offset_minutes, next_run_at, last_sent_at, failures"


@dataclass(frozen=True)
class DailySubscription:
    user_id: int
    hour: int
    utc_offset_minutes: int
    next_run_at: datetime
    last_sent_at: datetime | None
    failures: int


def next_run(hour: int, utc_offset_minutes: int, now: datetime) -> datetime:
    """The next moment strictly after `now` when it is `hour`:00 in the user's time zone."""
    offset = timedelta(minutes=utc_offset_minutes)
    local = now.astimezone(UTC) + offset
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate - offset


class DailyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def subscribe(self, user_id: int, hour: int, utc_offset_minutes: int, now: datetime) -> DailySubscription:
        """Subscribe or change the hour; the first pick comes at the next such hour."""
        row = await self._conn.fetchrow(
            f"""
            INSERT INTO daily_subscriptions (user_id, hour, utc_offset_minutes, next_run_at)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (user_id) DO UPDATE
               SET hour = EXCLUDED.hour, utc_offset_minutes = EXCLUDED.utc_offset_minutes,
                   next_run_at = EXCLUDED.next_run_at, failures = 0
            RETURNING {_COLUMNS}
            """,
            user_id,
            hour,
            utc_offset_minutes,
            next_run(hour, utc_offset_minutes, now),
        )
        assert row is not None  # an upsert with RETURNING always returns the row
        return DailySubscription(**dict(row))

    async def unsubscribe(self, user_id: int) -> bool:
        deleted = await self._conn.fetchval(
            "DELETE FROM daily_subscriptions WHERE user_id = $1 RETURNING user_id", user_id
        )
        return deleted is not None

    async def get(self, user_id: int) -> DailySubscription | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM daily_subscriptions WHERE user_id = $1", user_id)
        return None if row is None else DailySubscription(**dict(row))

    async def claim_due(self, now: datetime, limit: int) -> list[DailySubscription]:
        """Take up to `limit` due subscriptions and move each to its next day in one statement.

        Claiming before sending makes delivery at-most-once per day: a crash mid-send skips one pick rather
        than sending it twice, and two bot replicas never claim the same row (SKIP LOCKED).
        """
        rows = await self._conn.fetch(
            f"""
            WITH due AS (
                SELECT user_id FROM daily_subscriptions
                 WHERE next_run_at <= $1
                 ORDER BY next_run_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
            )
            UPDATE daily_subscriptions d
               SET next_run_at = d.next_run_at
                   + make_interval(days => greatest(1, ceil(extract(epoch FROM $1 - d.next_run_at) / 86400)::int))
              FROM due WHERE d.user_id = due.user_id
            RETURNING {", ".join("d." + c for c in _COLUMNS.split(", "))}
            """,
            now,
            limit,
        )
        return [DailySubscription(**dict(r)) for r in rows]

    async def retry_at(self, user_id: int, at: datetime) -> None:
        """Try this user again at `at` (an outage on our side), never later than their next regular pick."""
        await self._conn.execute(
            "UPDATE daily_subscriptions SET next_run_at = LEAST(next_run_at, $2) WHERE user_id = $1", user_id, at
        )

    async def reschedule(self, user_id: int, at: datetime) -> None:
        """Move the next pick to `at`: the sender realigns a late (retried) pick to the user's hour."""
        await self._conn.execute("UPDATE daily_subscriptions SET next_run_at = $2 WHERE user_id = $1", user_id, at)

    async def mark_sent(self, user_id: int, at: datetime) -> None:
        await self._conn.execute(
            "UPDATE daily_subscriptions SET last_sent_at = $2, failures = 0 WHERE user_id = $1", user_id, at
        )

    async def mark_failed(self, user_id: int, max_failures: int) -> bool:
        """Count a failed send; returns True when the subscription was dropped after too many in a row."""
        failures = await self._conn.fetchval(
            "UPDATE daily_subscriptions SET failures = failures + 1 WHERE user_id = $1 RETURNING failures", user_id
        )
        if failures is not None and failures >= max_failures:
            await self.unsubscribe(user_id)
            return True
        return False
