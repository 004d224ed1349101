"""Suggestions: personal sets sent by /foryou, onboarding and the daily pick, so likes on them can be checked."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from storage.db import Connection

SuggestionKind = Literal["foryou", "onboarding", "daily"]
KINDS: frozenset[str] = frozenset({"foryou", "onboarding", "daily"})


@dataclass(frozen=True)
class SuggestionView:
    id: int
    user_id: int
    kind: str
    artwork_ids: tuple[int, ...]
    because: dict[int, int]  # suggested artwork id -> the liked work that explains it
    created_at: datetime


class SuggestionsRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def create(
        self,
        user_id: int,
        kind: SuggestionKind,
        artwork_ids: Sequence[int],
        because: Mapping[int, int] | None = None,
    ) -> int:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {sorted(KINDS)}, not {kind!r}")
        payload = json.dumps({str(k): int(v) for k, v in (because or {}).items()})
        return await self._conn.fetchval(
            """
            INSERT INTO suggestions (user_id, kind, artwork_ids, because) VALUES ($1, $2, $3, $4::text::jsonb)
            RETURNING id
            """,
            user_id,
            kind,
            [int(i) for i in artwork_ids],
            payload,
        )

    async def get_for_user(self, suggestion_id: int, user_id: int) -> SuggestionView | None:
        """None unless it exists and is this user's: callback data is never trusted."""
        row = await self._conn.fetchrow(
            """
            SELECT id, user_id, kind, artwork_ids, because::text AS because, created_at
              FROM suggestions WHERE id = $1 AND user_id = $2
            """,
            suggestion_id,
            user_id,
        )
        if row is None:
            return None
        return SuggestionView(
            id=row["id"],
            user_id=row["user_id"],
            kind=row["kind"],
            artwork_ids=tuple(row["artwork_ids"]),
            because={int(k): int(v) for k, v in json.loads(row["because"]).items()},
            created_at=row["created_at"],
        )
