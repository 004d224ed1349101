"""Likes: a user's ❤️ (1) or 👎 (-1) on single works, their taste profile; undo (0) removes the mark."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection

LIKE_VALUES: frozenset[int] = frozenset({1, -1, 0})


@dataclass(frozen=True)
class LikedWork:
    """A work in the user's collection (/likes), with what its caption and album need."""

    artwork_id: int
    title: str
    artist: str
    year: str
    file_id: str | None  # Telegram's, once its image was uploaded


@dataclass(frozen=True)
class LikedPage:
    total: int  # ❤️ of this user in all
    works: list[LikedWork]  # this page's, newest first


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

    async def count_liked(self, user_id: int) -> int:
        return int(await self._conn.fetchval("SELECT count(*) FROM likes WHERE user_id = $1 AND value = 1", user_id))

    async def liked_page(self, user_id: int, offset: int, limit: int) -> LikedPage:
        """One page of the user's ❤️, newest first (the time of the mark; ties by artwork id), and the total."""
        total = await self.count_liked(user_id)
        rows = await self._conn.fetch(
            """
            SELECT l.artwork_id, a.title, a.artist, a.year, a.telegram_file_id
              FROM likes l JOIN artworks a ON a.id = l.artwork_id
             WHERE l.user_id = $1 AND l.value = 1
             ORDER BY l.updated_at DESC, l.artwork_id DESC
            OFFSET $2 LIMIT $3
            """,
            user_id,
            offset,
            limit,
        )
        works = [LikedWork(r["artwork_id"], r["title"], r["artist"], r["year"], r["telegram_file_id"]) for r in rows]
        return LikedPage(total, works)

    async def unlike(self, user_id: int, artwork_id: int) -> bool:
        """Remove this user's ❤️ on the work; a 👎 (or no mark) is left alone. False when there was no ❤️."""
        deleted = await self._conn.fetchval(
            "DELETE FROM likes WHERE user_id = $1 AND artwork_id = $2 AND value = 1 RETURNING true",
            user_id,
            artwork_id,
        )
        return bool(deleted)
