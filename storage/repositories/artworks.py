"""Artworks shown to users: gallery metadata, plus the Telegram file_id so each image is uploaded once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from storage.db import Connection


@dataclass(frozen=True)
class ArtworkRecord:
    id: int
    title: str
    artist: str
    year: str
    style: str
    genre: str
    source_path: str


class ArtworksRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def upsert_many(self, records: Iterable[ArtworkRecord]) -> None:
        """Insert or refresh metadata in one statement; a stored telegram_file_id is kept.

        Rows are written in id order (the last record wins for a repeated id), so concurrent transactions
        upserting overlapping sets lock rows in the same order and cannot deadlock.
        """
        by_id = {r.id: r for r in records}
        if not by_id:
            return
        rows = [by_id[i] for i in sorted(by_id)]
        await self._conn.execute(
            """
            INSERT INTO artworks (id, title, artist, year, style, genre, source_path)
            SELECT * FROM unnest($1::integer[], $2::text[], $3::text[], $4::text[],
                                 $5::text[], $6::text[], $7::text[])
            ON CONFLICT (id) DO UPDATE
               SET title = EXCLUDED.title, artist = EXCLUDED.artist, year = EXCLUDED.year,
                   style = EXCLUDED.style, genre = EXCLUDED.genre, source_path = EXCLUDED.source_path,
                   updated_at = now()
             WHERE (artworks.title, artworks.artist, artworks.year, artworks.style, artworks.genre,
                    artworks.source_path)
                   IS DISTINCT FROM
                   (EXCLUDED.title, EXCLUDED.artist, EXCLUDED.year, EXCLUDED.style, EXCLUDED.genre,
                    EXCLUDED.source_path)
            """,
            [r.id for r in rows],
            [r.title for r in rows],
            [r.artist for r in rows],
            [r.year for r in rows],
            [r.style for r in rows],
            [r.genre for r in rows],
            [r.source_path for r in rows],
        )

    async def get(self, artwork_id: int) -> ArtworkRecord | None:
        record = await self._conn.fetchrow(
            "SELECT id, title, artist, year, style, genre, source_path FROM artworks WHERE id = $1",
            artwork_id,
        )
        return None if record is None else ArtworkRecord(**dict(record))

    async def get_file_ids(self, ids: Sequence[int]) -> dict[int, str]:
        """Known Telegram file_ids of these works; works never uploaded are simply absent."""
        if not ids:
            return {}
        rows = await self._conn.fetch(
            "SELECT id, telegram_file_id FROM artworks"
            " WHERE id = ANY($1::integer[]) AND telegram_file_id IS NOT NULL",
            list(ids),
        )
        return {row["id"]: row["telegram_file_id"] for row in rows}

    async def set_file_id(self, artwork_id: int, file_id: str) -> bool:
        """Remember the upload; False when the artwork is not stored (upsert it first)."""
        updated = await self._conn.fetchval(
            "UPDATE artworks SET telegram_file_id = $2, updated_at = now() WHERE id = $1 RETURNING id",
            artwork_id,
            file_id,
        )
        return updated is not None
