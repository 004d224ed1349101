"""Users: who we have seen, and in which language to answer them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from storage.db import Connection

_COLUMNS = "telegram_id, language, language_code, first_seen, last_seen"


@dataclass(frozen=True)
class UserRow:
    telegram_id: int
    language: str | None  # explicit choice via /lang
    language_code: str | None  # as reported by Telegram
    first_seen: datetime
    last_seen: datetime

    @property
    def effective_language(self) -> str | None:
        """The language to answer in: an explicit choice wins over Telegram's hint."""
        return self.language or self.language_code


@dataclass(frozen=True)
class ForgottenUser:
    """What /forget deleted, and the ids the caller must also purge from Redis."""

    analyses: int
    votes: int
    likes: int
    suggestions: int
    daily: bool
    analysis_ids: tuple[int, ...]
    suggestion_ids: tuple[int, ...]
    image_sha256s: tuple[str, ...]


def _row(record: asyncpg.Record) -> UserRow:
    return UserRow(**dict(record))


class UsersRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def touch(self, telegram_id: int, language_code: str | None) -> UserRow:
        """Record that the user was seen now; a missing language_code keeps the one we already know."""
        record = await self._conn.fetchrow(
            f"""
            INSERT INTO users (telegram_id, language_code) VALUES ($1, $2)
            ON CONFLICT (telegram_id) DO UPDATE
               SET language_code = COALESCE(EXCLUDED.language_code, users.language_code),
                   last_seen = now()
            RETURNING {_COLUMNS}
            """,
            telegram_id,
            language_code,
        )
        assert record is not None  # an upsert with RETURNING always returns the row
        return _row(record)

    async def set_language(self, telegram_id: int, language: str | None) -> UserRow:
        """Store an explicit language (None clears it); creates the user if the first touch was missed."""
        record = await self._conn.fetchrow(
            f"""
            INSERT INTO users (telegram_id, language) VALUES ($1, $2)
            ON CONFLICT (telegram_id) DO UPDATE SET language = EXCLUDED.language, last_seen = now()
            RETURNING {_COLUMNS}
            """,
            telegram_id,
            language,
        )
        assert record is not None  # an upsert with RETURNING always returns the row
        return _row(record)

    async def get(self, telegram_id: int) -> UserRow | None:
        record = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM users WHERE telegram_id = $1", telegram_id
        )
        return None if record is None else _row(record)

    async def delete(self, telegram_id: int) -> bool:
        """Delete the user and, by cascade, everything they own; False if no such user."""
        deleted = await self._conn.fetchval(
            "DELETE FROM users WHERE telegram_id = $1 RETURNING telegram_id", telegram_id
        )
        return deleted is not None

    async def forget(self, telegram_id: int) -> ForgottenUser | None:
        """Delete everything of this user (cascades) and say what went; None if we never knew them.

        Call it in a transaction: the counts and the delete must see the same rows.
        """
        row = await self._conn.fetchrow(
            """
            SELECT (SELECT array_agg(id) FROM analyses WHERE user_id = $1) AS analysis_ids,
                   (SELECT array_agg(DISTINCT image_sha256) FROM analyses
                     WHERE user_id = $1 AND image_sha256 IS NOT NULL) AS shas,
                   (SELECT array_agg(id) FROM suggestions WHERE user_id = $1) AS suggestion_ids,
                   (SELECT count(*) FROM votes WHERE user_id = $1) AS votes,
                   (SELECT count(*) FROM likes WHERE user_id = $1) AS likes,
                   EXISTS (SELECT 1 FROM daily_subscriptions WHERE user_id = $1) AS daily
            """,
            telegram_id,
        )
        assert row is not None  # a SELECT of scalar subqueries always returns one row
        if not await self.delete(telegram_id):
            return None
        analysis_ids = tuple(row["analysis_ids"] or ())
        suggestion_ids = tuple(row["suggestion_ids"] or ())
        return ForgottenUser(
            analyses=len(analysis_ids),
            votes=int(row["votes"]),
            likes=int(row["likes"]),
            suggestions=len(suggestion_ids),
            daily=bool(row["daily"]),
            analysis_ids=analysis_ids,
            suggestion_ids=suggestion_ids,
            image_sha256s=tuple(row["shas"] or ()),
        )
