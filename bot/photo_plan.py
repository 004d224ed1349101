"""The photo flow's decisions, with no Telegram and no HTTP: what the cache already answers, what to ask the
service for, in which order the sets are shown, and what the cache learns afterwards. Pure, so every case
(cached, partly cached, personal, interleaved) is tested without a bot.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.arena import Matchup
from feedback.arena.interleaving import team_draft
from inference.contract import AnalyzeResponse, Hit, Match, Sets, Side, Tag


class CachedAnalysis(BaseModel):
    """What the Redis cache keeps per photo (SHA-256): everything but personal sets, which are per user. The
    description is the describer's English one; `translations` hold it per user language, so a photo is
    described once and translated once per language. `tags` are the photo's zero-shot style, genre and mood."""

    model_config = ConfigDict(extra="ignore")

    description: str = ""
    models: dict[str, Any] = Field(default_factory=dict)
    recommendations: Sets = Field(default_factory=dict)
    match: Match | None = None
    translations: dict[str, str] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> CachedAnalysis:
        """An entry written by an older release, or garbage, counts as no entry."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError:
            return cls()


@dataclass(frozen=True)
class PhotoPlan:
    matchup: Matchup
    cached: CachedAnalysis
    look: str | None
    """The fast recommender to fetch from /v1/look (its album goes out before the description is ready)."""
    analyze: tuple[str, ...]
    """Recommenders to ask /v1/analyze for: the personal ones always, the others unless cached."""
    personal: bool
    """/v1/analyze needs the user's feedback (a personal recommender plays)."""
    first: str | None
    """The set shown before the description (the fast one, cached or not); None in interleaving mode."""

    @property
    def from_cache(self) -> bool:
        return self.look is None and not self.analyze


def plan_photo(
    matchup: Matchup,
    cached: CachedAnalysis,
    *,
    is_personal: Callable[[str], bool],
    is_fast: Callable[[str], bool],
) -> PhotoPlan:
    have = cached.recommendations
    missing = [name for name in matchup.names if is_personal(name) or name not in have]
    sides = matchup.mode == "sides"
    first = next((name for name in matchup.names if sides and is_fast(name) and not is_personal(name)), None)
    look = first if first in missing else None
    analyze = tuple(name for name in missing if name != look)
    return PhotoPlan(
        matchup=matchup,
        cached=cached,
        look=look,
        analyze=analyze,
        personal=any(is_personal(name) for name in analyze),
        first=first,
    )


@dataclass
class Shown:
    """What the user saw: each recommender's hits, the description, and (interleaved) the merged order."""

    hits: dict[str, list[Hit]]
    description: str
    """As shown: in the user's language."""
    models: dict[str, Any]
    display: list[Hit] | None = None
    uploaded: dict[int, str] = field(default_factory=dict)
    match: Match | None = None
    """The gallery work recognised in the photo (the service already left it out of every set)."""
    language: str = "en"

    def sets_by_side(self, matchup: Matchup) -> dict[Side, list[int]]:
        return {matchup.sides[name]: [hit.artwork_id for hit in hits] for name, hits in self.hits.items()}

    @property
    def display_ids(self) -> list[int] | None:
        return None if self.display is None else [hit.artwork_id for hit in self.display]

    @property
    def works(self) -> list[Hit]:
        return [hit for hits in self.hits.values() for hit in hits]


@dataclass(frozen=True)
class Merged:
    """Everything known for the photo once the service answered: the sets, the English description, the models,
    the recognised work and the photo's tags."""

    sets: Sets
    description: str
    models: dict[str, Any]
    match: Match | None
    tags: list[Tag] = field(default_factory=list)


def merge(
    plan: PhotoPlan,
    looked: Sets,
    analyzed: AnalyzeResponse | None,
    looked_match: Match | None = None,
    looked_tags: Sequence[Tag] = (),
) -> Merged:
    """Every set now known for the matchup (cache, then /v1/look, then /v1/analyze) with the description; the
    tags, like the match, from the first of them that has any."""
    have: Sets = {**plan.cached.recommendations, **looked}
    description, models, match = plan.cached.description, plan.cached.models, plan.cached.match or looked_match
    tags = list(plan.cached.tags or looked_tags)
    if analyzed is not None:
        have.update({name: analyzed.recommendations[name] for name in plan.analyze})
        description = analyzed.description or description
        models = analyzed.models or models
        match = match or analyzed.match
        tags = tags or list(analyzed.tags)
    return Merged(have, description, models, match, tags)


def cache_update(
    plan: PhotoPlan, merged: Merged, translations: dict[str, str], is_personal: Callable[[str], bool]
) -> CachedAnalysis | None:
    """The new cache entry (the old one plus what was computed now, never personal sets); None if nothing new."""
    shared = {name: hits for name, hits in merged.sets.items() if not is_personal(name)}
    entry = CachedAnalysis(
        description=merged.description,
        models=merged.models,
        recommendations=shared,
        match=merged.match,
        translations={**plan.cached.translations, **translations},
        tags=merged.tags,
    )
    return None if entry == plan.cached else entry


def interleave(matchup: Matchup, have: Sets, k: int, rng: random.Random) -> tuple[list[Hit], dict[str, list[Hit]]]:
    """One team-draft set from the two recommenders, and each team's contribution (stored as the two sides)."""
    left = [hit.artwork_id for hit in have[matchup.left]]
    right = [hit.artwork_id for hit in have[matchup.right]]
    merged = team_draft(left, right, k, rng)
    by_id = {hit.artwork_id: hit for name in matchup.names for hit in have[name]}
    teams = {
        matchup.left: [by_id[i] for i in merged.ids_of("a")],
        matchup.right: [by_id[i] for i in merged.ids_of("b")],
    }
    return [by_id[i] for i in merged.artwork_ids], teams
