"""Votes: which shown set a user preferred; one per user and analysis, and re-voting changes it."""

from __future__ import annotations

from inference.contract import VOTE_CHOICES as CHOICES
from inference.contract import VoteChoice as Choice
from storage.db import Connection


class VotesRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def upsert(self, user_id: int, analysis_id: int, choice: Choice) -> bool:
        """Store the vote; False when this very choice was already stored (pressing twice counts once).

        The database refuses a vote on an analysis that is not this user's (foreign key on both columns).
        """
        if choice not in CHOICES:
            raise ValueError(f"choice must be one of {sorted(CHOICES)}, not {choice!r}")
        changed = await self._conn.fetchval(
            """
            INSERT INTO votes (user_id, analysis_id, choice) VALUES ($1, $2, $3)
            ON CONFLICT (user_id, analysis_id) DO UPDATE SET choice = EXCLUDED.choice, updated_at = now()
             WHERE votes.choice IS DISTINCT FROM EXCLUDED.choice
            RETURNING true
            """,
            user_id,
            analysis_id,
            choice,
        )
        return bool(changed)

    async def get(self, user_id: int, analysis_id: int) -> str | None:
        return await self._conn.fetchval(
            "SELECT choice FROM votes WHERE user_id = $1 AND analysis_id = $2", user_id, analysis_id
        )
