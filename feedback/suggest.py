"""Choosing which works to show: personal suggestions, taste re-ranking of the arena's candidates, onboarding.

Plain top-k by taste shows five near-copies of one liked work; MMR trades a little taste for variety. A few
random slots (exploration) let the profile learn about kinds of art the user has not been shown yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedback.taste import TasteProfile

MMR_POOL_MIN = 200
MMR_POOL_PER_SLOT = 20


@dataclass(frozen=True)
class Suggestion:
    """One suggested work; `because` is the liked work it resembles most, None for exploration picks."""

    artwork_id: int
    score: float
    because: int | None
    explored: bool


def suggest(
    profile: TasteProfile,
    candidate_ids: Sequence[int] | np.ndarray,
    candidate_vectors: np.ndarray,
    k: int,
    *,
    rng: np.random.Generator,
    diversity: float = 0.3,
    exploration: float = 0.1,
) -> list[Suggestion]:
    """Up to k unseen works for the user: taste-ranked, diversified by MMR, with a few exploration slots."""
    vectors = _rows(candidate_ids, candidate_vectors)
    count = min(k, len(candidate_ids))
    if count <= 0:
        return []
    if profile.is_empty:
        return [Suggestion(int(i), 0.0, None, True) for i in diverse_sample(candidate_ids, vectors, count, rng)]
    taste = profile.score(vectors)
    # MMR only looks among the best-scoring works (always more than k): a work outside them would not win a slot
    # on taste anyway, and scanning the whole gallery per slot is what makes this slow on big galleries.
    pool = np.argsort(-taste, kind="stable")[: max(MMR_POOL_MIN, MMR_POOL_PER_SLOT * count)]
    pool_taste, pool_vectors = taste[pool], vectors[pool]
    in_pool = np.ones(len(pool), dtype=bool)
    redundancy = np.zeros(len(pool), dtype=np.float32)  # max similarity to anything chosen so far
    available = np.ones(len(candidate_ids), dtype=bool)
    picks: list[tuple[int, bool]] = []
    for _ in range(count):
        explored = bool(rng.random() < exploration)
        if explored:
            pick = int(rng.choice(np.flatnonzero(available)))
        else:
            mmr = (1.0 - diversity) * pool_taste - (diversity * redundancy if picks else 0.0)
            pick = int(pool[np.where(in_pool, mmr, -np.inf).argmax()])
        available[pick] = False
        in_pool &= pool != pick
        redundancy = np.maximum(redundancy, pool_vectors @ vectors[pick])
        picks.append((pick, explored))
    because = profile.because(vectors[[pick for pick, _ in picks]])
    return [
        Suggestion(int(candidate_ids[pick]), float(taste[pick]), None if explored else reason, explored)
        for (pick, explored), reason in zip(picks, because, strict=True)
    ]


def rerank(
    profile: TasteProfile,
    candidate_ids: Sequence[int] | np.ndarray,
    candidate_vectors: np.ndarray,
    relevance: Sequence[float],
    k: int,
    *,
    taste_weight: float = 0.5,
) -> list[Suggestion]:
    """Re-rank works relevant to the user's photo by blending min-max-normalised relevance and taste."""
    vectors = _rows(candidate_ids, candidate_vectors)
    if len(relevance) != len(candidate_ids):
        raise ValueError(f"{len(relevance)} relevance scores for {len(candidate_ids)} candidates")
    if len(candidate_ids) == 0 or k <= 0:
        return []
    blended = _min_max(np.asarray(relevance, dtype=np.float64))
    if not profile.is_empty:
        blended = (1.0 - taste_weight) * blended + taste_weight * _min_max(profile.score(vectors).astype(np.float64))
    order = np.argsort(-blended, kind="stable")[:k]
    because = profile.because(vectors[order])
    return [
        Suggestion(int(candidate_ids[i]), float(blended[i]), reason, False)
        for i, reason in zip(order, because, strict=True)
    ]


def diverse_sample(
    candidate_ids: Sequence[int] | np.ndarray, candidate_vectors: np.ndarray, k: int, rng: np.random.Generator
) -> list[int]:
    """k works spread over the gallery (k-means++ seeding from a random start), so a new user sees many kinds.

    Sampling in proportion to squared cosine distance, rather than always taking the farthest work, avoids
    filling onboarding with the gallery's oddest outliers.
    """
    vectors = _rows(candidate_ids, candidate_vectors)
    count = min(k, len(candidate_ids))
    if count <= 0:
        return []
    chosen = [int(rng.integers(len(candidate_ids)))]
    distance = np.maximum(1.0 - vectors @ vectors[chosen[0]], 0.0).astype(np.float64)
    distance[chosen[0]] = 0.0
    for _ in range(1, count):
        mass = distance**2
        if mass.sum() > 1e-12:
            pick = int(rng.choice(len(candidate_ids), p=mass / mass.sum()))
        else:  # the rest are duplicates of what was chosen: any unchosen one will do
            remaining = np.setdiff1d(np.arange(len(candidate_ids)), chosen)
            pick = int(rng.choice(remaining))
        chosen.append(pick)
        distance = np.minimum(distance, np.maximum(1.0 - vectors @ vectors[pick], 0.0))
        distance[chosen] = 0.0
    return [int(candidate_ids[i]) for i in chosen]


def _rows(candidate_ids: Sequence[int] | np.ndarray, candidate_vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(candidate_vectors, dtype=np.float32)
    if len(vectors) != len(candidate_ids):
        raise ValueError(f"{len(vectors)} vectors for {len(candidate_ids)} candidates")
    return vectors


def _min_max(values: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] so scores on different scales (fusion ranks, cosines) can be blended; flat -> zeros."""
    spread = float(values.max() - values.min()) if len(values) else 0.0
    return (values - values.min()) / spread if spread > 1e-12 else np.zeros_like(values)
