"""A user's feedback history as the taste profile reads it: likes, votes on shown sets, and what was seen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.db import Connection


@dataclass(frozen=True)
class LikeEntry:
    artwork_id: int
    value: int  # 1 like, -1 dislike
    at: datetime


@dataclass(frozen=True)
class VoteEntry:
    left_ids: tuple[int, ...]
    right_ids: tuple[int, ...]
    choice: str
    at: datetime


class HistoryRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def likes(self, user_id: int, limit: int = 2000) -> list[LikeEntry]:
        """The most recent marks first; the profile weighs them by age."""
        rows = await self._conn.fetch(
            "SELECT artwork_id, value, updated_at FROM likes WHERE user_id = $1 ORDER BY updated_at DESC LIMIT $2",
            user_id,
            limit,
        )
        return [LikeEntry(r["artwork_id"], r["value"], r["updated_at"]) for r in rows]

    async def votes(self, user_id: int, limit: int = 500) -> list[VoteEntry]:
        """Votes on side-by-side analyses with the works of each side (a weak signal of taste)."""
        rows = await self._conn.fetch(
            """
            SELECT l.artwork_ids AS left_ids, r.artwork_ids AS right_ids, v.choice, v.updated_at
              FROM votes v
              JOIN shown_sets l ON l.analysis_id = v.analysis_id AND l.side = 'left'
              JOIN shown_sets r ON r.analysis_id = v.analysis_id AND r.side = 'right'
             WHERE v.user_id = $1
             ORDER BY v.updated_at DESC
             LIMIT $2
            """,
            user_id,
            limit,
        )
        return [VoteEntry(tuple(r["left_ids"]), tuple(r["right_ids"]), r["choice"], r["updated_at"]) for r in rows]

    async def seen_artwork_ids(self, user_id: int) -> set[int]:
        """Every work already shown to or marked by this user: /foryou sends only fresh ones."""
        rows = await self._conn.fetch(
            """
            SELECT unnest(s.artwork_ids) AS id FROM shown_sets s
              JOIN analyses a ON a.id = s.analysis_id WHERE a.user_id = $1
            UNION SELECT unnest(artwork_ids) FROM suggestions WHERE user_id = $1
            UNION SELECT artwork_id FROM likes WHERE user_id = $1
            """,
            user_id,
        )
        return {int(r["id"]) for r in rows}

    async def has_likes(self, user_id: int) -> bool:
        query = "SELECT EXISTS (SELECT 1 FROM likes WHERE user_id = $1 AND value = 1)"
        return bool(await self._conn.fetchval(query, user_id))
