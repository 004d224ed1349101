"""Likes: a user's ❤️ (1) or 👎 (-1) on single works, their taste profile; undo (0) removes the mark."""

from __future__ import annotations

from storage.db import Connection

LIKE_VALUES: frozenset[int] = frozenset({1, -1, 0})


class LikesRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def set(
        self,
        user_id: int,
        artwork_id: int,
        value: int,
        analysis_id: int | None = None,
        suggestion_id: int | None = None,
    ) -> bool:
        """Like (1), dislike (-1) or undo (0); False when nothing changed (same mark again, nothing to undo).

        `analysis_id` or `suggestion_id` records where the work was marked; it must be this user's own.
        """
        if value not in LIKE_VALUES:
            raise ValueError(f"value must be 1, -1 or 0, not {value!r}")
        if value == 0:
            deleted = await self._conn.fetchval(
                "DELETE FROM likes WHERE user_id = $1 AND artwork_id = $2 RETURNING true", user_id, artwork_id
            )
            return bool(deleted)
        changed = await self._conn.fetchval(
            """
            INSERT INTO likes (user_id, artwork_id, value, analysis_id, suggestion_id) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (user_id, artwork_id) DO UPDATE
               SET value = EXCLUDED.value, analysis_id = EXCLUDED.analysis_id,
                   suggestion_id = EXCLUDED.suggestion_id, updated_at = now()
             WHERE likes.value IS DISTINCT FROM EXCLUDED.value
            RETURNING true
            """,
            user_id,
            artwork_id,
            value,
            analysis_id,
            suggestion_id,
        )
        return bool(changed)

    async def for_user(self, user_id: int) -> dict[int, int]:
        """artwork_id -> 1 or -1 for every work this user has marked."""
        rows = await self._conn.fetch("SELECT artwork_id, value FROM likes WHERE user_id = $1", user_id)
        return {row["artwork_id"]: row["value"] for row in rows}
