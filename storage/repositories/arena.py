"""What the arena's ratings are fitted on: votes per (left recommender, right recommender, choice)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection


@dataclass(frozen=True)
class InterleavedRecord:
    """One interleaved analysis: each team's works and the user's current marks on them."""

    left_recommender: str
    right_recommender: str
    left_ids: tuple[int, ...]
    right_ids: tuple[int, ...]
    likes: dict[int, int]


class ArenaRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def vote_rows(self) -> list[tuple[str, str, str, int]]:
        """(left recommender, right recommender, choice, count), aggregated in SQL so 1M votes stay cheap."""
        rows = await self._conn.fetch(
            """
            SELECT l.recommender AS left_name, r.recommender AS right_name, v.choice, count(*) AS n
              FROM votes v
              JOIN analyses a ON a.id = v.analysis_id AND a.mode = 'sides'
              JOIN shown_sets l ON l.analysis_id = v.analysis_id AND l.side = 'left'
              JOIN shown_sets r ON r.analysis_id = v.analysis_id AND r.side = 'right'
             GROUP BY 1, 2, 3
            """
        )
        return [(r["left_name"], r["right_name"], r["choice"], int(r["n"])) for r in rows]

    async def interleaved(self, limit: int = 200_000) -> list[InterleavedRecord]:
        """Interleaved analyses that received at least one like or dislike on their works."""
        rows = await self._conn.fetch(
            """
            SELECT l.recommender AS left_name, r.recommender AS right_name,
                   l.artwork_ids AS left_ids, r.artwork_ids AS right_ids,
                   array_agg(k.artwork_id) AS liked_ids, array_agg(k.value) AS liked_values
              FROM analyses a
              JOIN shown_sets l ON l.analysis_id = a.id AND l.side = 'left'
              JOIN shown_sets r ON r.analysis_id = a.id AND r.side = 'right'
              JOIN likes k ON k.user_id = a.user_id
                          AND (k.artwork_id = ANY (l.artwork_ids) OR k.artwork_id = ANY (r.artwork_ids))
             WHERE a.mode = 'interleaved'
             GROUP BY a.id, l.recommender, r.recommender, l.artwork_ids, r.artwork_ids
             LIMIT $1
            """,
            limit,
        )
        return [
            InterleavedRecord(
                r["left_name"],
                r["right_name"],
                tuple(r["left_ids"]),
                tuple(r["right_ids"]),
                dict(zip(r["liked_ids"], r["liked_values"], strict=True)),
            )
            for r in rows
        ]
