"""Analyses: one per photo a user sent, with the two sets shown and which recommender was on which side."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from inference.contract import SIDES, Side
from inference.contract import ArenaMode as Mode
from storage.db import Connection

AnalysisKind = Literal["photo", "text", "colour"]
"""What the sets answered: a photo (with its hash), words (/search) or a colour (/color), with `query_text`."""


@dataclass(frozen=True)
class ShownSet:
    recommender: str  # e.g. "by_look", "by_meaning"
    side: Side
    artwork_ids: Sequence[int]  # in the order shown


@dataclass(frozen=True)
class Recognised:
    """The claim "this photo shows gallery work `artwork_id`", with its calibrated confidence."""

    artwork_id: int
    confidence: float


@dataclass(frozen=True)
class AnalysisView:
    id: int
    user_id: int
    created_at: datetime
    image_sha256: str | None  # None for a word or colour search
    description: str
    model_versions: dict[str, Any]
    latency_ms: int
    from_cache: bool
    sets: tuple[ShownSet, ...] = field(default_factory=tuple)
    mode: Mode = "sides"
    display_ids: tuple[int, ...] | None = None  # interleaved: the merged order shown
    match: Recognised | None = None  # the gallery work the photo was recognised as, if any
    language: str | None = None  # the language of the answer (the description included)
    kind: AnalysisKind = "photo"
    query_text: str | None = None  # the words or the colour searched (None for a photo)

    def side(self, side: Side) -> ShownSet | None:
        return next((s for s in self.sets if s.side == side), None)

    @property
    def artwork_ids(self) -> frozenset[int]:
        """Every work shown in this analysis: the only ones a like may refer to."""
        return frozenset(i for s in self.sets for i in s.artwork_ids)


class AnalysesRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def create(
        self,
        user_id: int,
        image_sha256: str | None,
        description: str,
        model_versions: dict[str, Any],
        latency_ms: int,
        from_cache: bool,
        sets: Sequence[ShownSet],
        mode: Mode = "sides",
        display_ids: Sequence[int] | None = None,
        match: Recognised | None = None,
        language: str | None = None,
        kind: AnalysisKind = "photo",
        query_text: str | None = None,
    ) -> int:
        """Insert the analysis and its shown sets; returns the new id. Call it inside a transaction.

        In `interleaved` mode the sets are the two teams of one merged set and `display_ids` its shown order. A
        photo has its `image_sha256`; a word or colour search (`kind`) has `query_text` instead.
        """
        for shown in sets:
            if shown.side not in SIDES:
                raise ValueError(f"side must be 'left' or 'right', not {shown.side!r}")
        # jsonb goes in as text and is cast in SQL, so this works whatever codecs the connection has.
        analysis_id: int = await self._conn.fetchval(
            """
            INSERT INTO analyses
                   (user_id, image_sha256, description, model_versions, latency_ms, from_cache, mode, display_ids,
                    matched_artwork_id, match_confidence, language, kind, query_text)
            VALUES ($1, $2, $3, $4::text::jsonb, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            RETURNING id
            """,
            user_id,
            image_sha256,
            description,
            json.dumps(model_versions, ensure_ascii=False),
            latency_ms,
            from_cache,
            mode,
            None if display_ids is None else list(display_ids),
            None if match is None else match.artwork_id,
            None if match is None else match.confidence,
            language,
            kind,
            query_text,
        )
        if sets:
            await self._conn.executemany(
                "INSERT INTO shown_sets (analysis_id, recommender, side, artwork_ids)"
                " VALUES ($1, $2, $3, $4)",
                [(analysis_id, s.recommender, s.side, list(s.artwork_ids)) for s in sets],
            )
        return analysis_id

    async def get_for_user(self, analysis_id: int, user_id: int) -> AnalysisView | None:
        """The analysis with its sets; None unless it exists and is this user's (rejects forged callbacks)."""
        rows = await self._conn.fetch(
            """
            SELECT a.id, a.user_id, a.created_at, a.image_sha256, a.description,
                   a.model_versions::text AS model_versions, a.latency_ms, a.from_cache, a.mode, a.display_ids,
                   a.matched_artwork_id, a.match_confidence, a.language, a.kind, a.query_text,
                   s.recommender, s.side, s.artwork_ids
              FROM analyses a
              LEFT JOIN shown_sets s ON s.analysis_id = a.id
             WHERE a.id = $1 AND a.user_id = $2
             ORDER BY s.side
            """,
            analysis_id,
            user_id,
        )
        if not rows:
            return None
        first = rows[0]
        sets = tuple(
            ShownSet(recommender=r["recommender"], side=r["side"], artwork_ids=tuple(r["artwork_ids"]))
            for r in rows
            if r["side"] is not None
        )
        return AnalysisView(
            id=first["id"],
            user_id=first["user_id"],
            created_at=first["created_at"],
            image_sha256=first["image_sha256"],
            description=first["description"],
            model_versions=json.loads(first["model_versions"]),
            latency_ms=first["latency_ms"],
            from_cache=first["from_cache"],
            sets=sets,
            mode=first["mode"],
            display_ids=None if first["display_ids"] is None else tuple(first["display_ids"]),
            match=None
            if first["matched_artwork_id"] is None
            else Recognised(first["matched_artwork_id"], float(first["match_confidence"])),
            language=first["language"],
            kind=first["kind"],
            query_text=first["query_text"],
        )
