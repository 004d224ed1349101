"""Suggestions without a photo (/v1/suggest) and the onboarding sample (/v1/onboarding).

The taste math is `feedback.suggest`; this module chooses the candidates it scores. Scoring every work is
fine for a few thousand; above that, candidates are the works nearest each interest of the profile, found
through the gallery's image index (exact or IVF as its size chose, `inference.vector_index`: an IVF query costs
about a millisecond at 1 M works where an exact scan costs ~90 ms per interest), plus a random sample, so the
exploration slots can still reach any kind of art.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from feedback.suggest import Suggestion, diverse_sample, suggest
from feedback.taste import FeedbackEvent, TasteProfile
from inference.gallery_store import Gallery

SCAN_ALL_UP_TO = 5000
"""Galleries up to this size score every unseen work (a few MB of vectors, milliseconds of numpy)."""
PER_INTEREST = 500
EXPLORATION_SAMPLE = 200
COLD_SAMPLE = 2000
"""Without interests (a new user, or onboarding), a random sample this large stands for a large gallery."""


@dataclass
class SuggestResult:
    profile: TasteProfile
    suggestions: list[Suggestion]


def _unseen(ids: Iterable[int] | np.ndarray, seen: set[int]) -> np.ndarray:
    unique = np.unique(np.fromiter(ids, dtype=np.int64) if not isinstance(ids, np.ndarray) else ids.astype(np.int64))
    return unique[~np.isin(unique, np.fromiter(seen, dtype=np.int64, count=len(seen)))]


def _random_ids(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(size, size=min(size, count), replace=False)


def candidates(gallery: Gallery, profile: TasteProfile, seen: set[int], rng: np.random.Generator) -> np.ndarray:
    """Unseen artwork ids worth scoring for this profile (sorted, so a seed gives the same answer)."""
    size = len(gallery)
    if size <= SCAN_ALL_UP_TO:
        return _unseen(range(size), seen)
    queries = profile.query_vectors()
    if len(queries) == 0:
        return _unseen(_random_ids(size, COLD_SAMPLE, rng), seen)
    # Ask for more than PER_INTEREST when much is excluded, so a long-time user still gets enough candidates.
    depth = min(size, PER_INTEREST + len(seen))
    near = gallery.nearest_image_ids(queries, depth).reshape(-1)
    return _unseen(np.concatenate([near[near >= 0], _random_ids(size, EXPLORATION_SAMPLE, rng)]), seen)


def suggest_for(
    gallery: Gallery,
    events: list[FeedbackEvent],
    exclude: Iterable[int],
    k: int,
    *,
    exploration: float,
    seed: int | None,
) -> SuggestResult:
    """Up to k works for this user, none excluded and none they already gave feedback on."""
    rng = np.random.default_rng(seed)
    profile = TasteProfile.build(events, gallery.vectors, seed=seed or 0)
    seen = set(exclude) | {event.artwork_id for event in events} | gallery.removed
    ids = candidates(gallery, profile, seen, rng)
    if len(ids) == 0:
        return SuggestResult(profile, [])
    chosen = suggest(profile, ids.tolist(), gallery.vectors(ids), k, rng=rng, exploration=exploration)
    return SuggestResult(profile, chosen)


def onboarding(gallery: Gallery, exclude: Iterable[int], k: int, *, seed: int | None) -> list[int]:
    """k works spread over the gallery, for a new user to say which they like."""
    rng = np.random.default_rng(seed)
    seen = set(exclude) | gallery.removed  # removed works are never suggested
    size = len(gallery)
    pool = range(size) if size <= SCAN_ALL_UP_TO else _random_ids(size, COLD_SAMPLE, rng).tolist()
    ids = _unseen(pool, seen)
    if len(ids) == 0:
        return []
    return diverse_sample(ids.tolist(), gallery.vectors(ids), k, rng)
