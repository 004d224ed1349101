"""A user's taste, learned from likes, dislikes and set votes over CLIP image embeddings.

People like several unrelated kinds of art (say, Dutch still lifes and Japanese prints). One average vector of
their likes points somewhere between those kinds, often at works they never cared for, so the profile keeps a few
*interests* instead: a weighted spherical k-means over the works they liked. Dislikes are kept as single works and
push their near neighbours down. Old feedback fades with a half-life, so tastes may change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from inference.contract import VOTE_CHOICES

VOTE_SIGNAL = 0.2
"""A set vote says little about any single work in the set: a fifth of a like."""


INTEREST_BONUS = 0.1
"""Added to the cosine of an interest times its weight share: a work as close to a strong interest as to a passing
one ranks first, but a passing interest still beats a poor match to a strong one."""

DISLIKE_PENALTY = 1.0
"""How far dislikes push a work down. The penalty is local and counts evidence: it grows with the number of
disliked works close to the candidate and shrinks with liked works just as close, so one chance like among
several dislikes of the same kind stops steering suggestions, while a near-duplicate of a disliked work drops even
inside a liked kind."""

UNRELATED_QUANTILE = 0.25
"""Closeness is measured above the cosine of unrelated works, read off the user's own rated works (a low quantile
of their pairwise cosines): CLIP galleries differ in how similar "unrelated" is (often 0.3-0.5), and a fixed
threshold would penalise everything in one gallery and nothing in another."""

SPLIT_SILHOUETTE = 0.15
"""Several interests are kept only when they are really apart (mean cosine silhouette at least this): a single
taste spread over one style is otherwise split into arbitrary halves."""

LIKES_PER_INTEREST = 3
_KMEANS_RESTARTS = 4
_KMEANS_ITERATIONS = 25
_EPS = 1e-9


@dataclass(frozen=True)
class FeedbackEvent:
    """One piece of feedback on one artwork; `value` is +1 like, -1 dislike, smaller for vote-derived signal."""

    artwork_id: int
    value: float
    age_days: float = 0.0


def events_from_vote(
    left_ids: Sequence[int], right_ids: Sequence[int], choice: str, age_days: float
) -> list[FeedbackEvent]:
    """Turn an A/B vote into weak per-work signal: the chosen set up, the rejected one down."""
    if choice not in VOTE_CHOICES:
        raise ValueError(f"unknown vote choice {choice!r}; expected one of {VOTE_CHOICES}")
    left_value = {"left": VOTE_SIGNAL, "right": -VOTE_SIGNAL, "both": VOTE_SIGNAL, "neither": -VOTE_SIGNAL}[choice]
    right_value = {"left": -VOTE_SIGNAL, "right": VOTE_SIGNAL, "both": VOTE_SIGNAL, "neither": -VOTE_SIGNAL}[choice]
    return [FeedbackEvent(int(i), left_value, age_days) for i in left_ids] + [
        FeedbackEvent(int(i), right_value, age_days) for i in right_ids
    ]


@dataclass
class Interest:
    """One kind of art the user likes."""

    centroid: np.ndarray
    weight: float
    artwork_ids: list[int]


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def _normalise(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.maximum(norms, _EPS)).astype(np.float32)


@dataclass
class TasteProfile:
    """Interests (what to look for), liked works (to explain a suggestion) and disliked works (what to avoid)."""

    interests: list[Interest]
    liked_ids: list[int]
    liked_vectors: np.ndarray
    disliked_ids: list[int]
    disliked_vectors: np.ndarray
    liked_strength: np.ndarray | None = None
    """Per liked work, how firmly (recency-weighted net feedback, at most 1); None: all 1."""
    disliked_strength: np.ndarray | None = None
    """Per disliked work, likewise: a rejected set vote counts little. None: all 1."""
    unrelated_cosine: float | None = None
    """Cosine of two unrelated works in this gallery; None: estimated from the rated works."""
    explainable_ids: frozenset[int] | None = None
    """Liked works the user marked ❤️ themselves (not just in a set they voted for): the only ones a caption may
    name in "because you liked …". None: every liked work."""

    def __post_init__(self) -> None:
        if self.liked_strength is None:
            self.liked_strength = np.ones(len(self.liked_ids), dtype=np.float32)
        if self.disliked_strength is None:
            self.disliked_strength = np.ones(len(self.disliked_ids), dtype=np.float32)
        if self.unrelated_cosine is None:
            self.unrelated_cosine = _unrelated_cosine(self.liked_vectors, self.disliked_vectors)

    @classmethod
    def build(
        cls,
        events: Sequence[FeedbackEvent],
        vectors: Callable[[Sequence[int]], np.ndarray],
        *,
        half_life_days: float = 30.0,
        max_interests: int = 4,
        seed: int = 0,
    ) -> TasteProfile:
        """Sum each work's recency-weighted feedback, then group the net-positive works into interests."""
        net: dict[int, float] = {}
        for event in events:
            decay = 0.5 ** (max(event.age_days, 0.0) / half_life_days)
            net[event.artwork_id] = net.get(event.artwork_id, 0.0) + event.value * decay
        liked = sorted((i for i, w in net.items() if w > _EPS), key=lambda i: (-net[i], i))
        disliked = sorted((i for i, w in net.items() if w < -_EPS), key=lambda i: (net[i], i))
        fetched = liked + disliked
        rows = _normalise(np.asarray(vectors(fetched), dtype=np.float32)) if fetched else _empty(0)
        dim = rows.shape[1] if rows.ndim == 2 else 0
        liked_vectors = rows[: len(liked)] if liked else _empty(dim)
        disliked_vectors = rows[len(liked) :] if disliked else _empty(dim)
        weights = np.array([net[i] for i in liked], dtype=np.float64)
        interests = _interests(liked, liked_vectors, weights, max_interests, seed) if liked else []
        return cls(
            interests,
            liked,
            liked_vectors,
            disliked,
            disliked_vectors,
            liked_strength=np.minimum(weights, 1.0).astype(np.float32),
            disliked_strength=np.minimum(np.array([-net[i] for i in disliked], dtype=np.float32), 1.0),
            explainable_ids=frozenset(e.artwork_id for e in events if e.value >= 1.0),
        )

    @property
    def is_empty(self) -> bool:
        """No positive evidence: nothing to look for yet (dislikes alone cannot say what someone likes)."""
        return not self.interests

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Taste score per row: closeness to the best-matching interest, minus closeness to disliked works."""
        vectors = np.asarray(vectors, dtype=np.float32)
        scores = np.zeros(len(vectors), dtype=np.float32)
        if len(vectors) == 0:
            return scores
        if self.interests:
            centroids = self.query_vectors()
            bonus = INTEREST_BONUS * np.array([interest.weight for interest in self.interests], dtype=np.float32)
            scores = (vectors @ centroids.T + bonus).max(axis=1)
        if len(self.disliked_ids):
            assert self.disliked_strength is not None and self.liked_strength is not None
            closeness = self._closeness(vectors, np.concatenate([self.disliked_vectors, self.liked_vectors]))
            against = closeness[:, : len(self.disliked_ids)] @ self.disliked_strength
            support = closeness[:, len(self.disliked_ids) :] @ self.liked_strength
            scores = scores - DISLIKE_PENALTY * against / (1.0 + support)
        return scores.astype(np.float32)

    def _closeness(self, vectors: np.ndarray, rated: np.ndarray) -> np.ndarray:
        """(n, m) kernel in [0, 1]: 0 for works no closer than unrelated ones, 1 for identical ones."""
        floor = float(self.unrelated_cosine or 0.0)
        closeness = vectors @ rated.T.astype(np.float32)
        closeness -= floor
        closeness *= 1.0 / (1.0 - floor)
        np.clip(closeness, 0.0, 1.0, out=closeness)
        return np.square(closeness, out=closeness)

    def because(self, vectors: np.ndarray) -> list[int | None]:
        """Per row, the liked work it is most similar to, to tell the user why it is suggested."""
        vectors = np.asarray(vectors, dtype=np.float32)
        allowed = [j for j, i in enumerate(self.liked_ids) if self.explainable_ids is None or i in self.explainable_ids]
        if not allowed:
            return [None] * len(vectors)
        if len(vectors) == 0:
            return []
        nearest = (vectors @ self.liked_vectors[allowed].T).argmax(axis=1)
        return [self.liked_ids[allowed[j]] for j in nearest]

    def query_vectors(self) -> np.ndarray:
        """Interest centroids (k, D), strongest first: one FAISS query per interest gathers candidates."""
        if not self.interests:
            return _empty(self.liked_vectors.shape[1] if self.liked_vectors.ndim == 2 else 0)
        return np.stack([interest.centroid for interest in self.interests]).astype(np.float32)


def _unrelated_cosine(liked: np.ndarray, disliked: np.ndarray) -> float:
    rated = np.concatenate([liked, disliked]) if liked.size and disliked.size else (liked if liked.size else disliked)
    if len(rated) < 2:
        return 0.0
    pairs = (rated @ rated.T)[np.triu_indices(len(rated), k=1)]
    return float(np.clip(np.quantile(pairs, UNRELATED_QUANTILE), 0.0, 0.9))


def _interests(ids: list[int], rows: np.ndarray, weights: np.ndarray, max_interests: int, seed: int) -> list[Interest]:
    """Cluster liked works into the number of interests the data supports (~1 per 3 likes, truly apart).

    Which kinds exist is a question of geometry, so every liked work counts the same when the split is chosen (a
    faded taste is still a taste, only a weak one); the feedback weights pull each centroid towards the recent
    likes of its kind and set each interest's share.
    """
    rng = np.random.default_rng(seed)
    k_max = max(1, min(max_interests, math.ceil(len(ids) / LIKES_PER_INTEREST)))
    best_labels, best_centroids = _spherical_kmeans(rows, weights, 1, rng)
    best_silhouette = SPLIT_SILHOUETTE
    for k in range(2, k_max + 1):
        labels, centroids = _spherical_kmeans(rows, weights, k, rng)
        silhouette = _silhouette(rows, labels)
        if silhouette >= best_silhouette:
            best_labels, best_centroids, best_silhouette = labels, centroids, silhouette
    total = float(weights.sum())
    interests = []
    for cluster, centroid in enumerate(best_centroids):
        members = np.flatnonzero(best_labels == cluster)
        if len(members) == 0:
            continue
        member_ids = [ids[m] for m in members[np.argsort(-weights[members], kind="stable")]]
        interests.append(Interest(centroid, float(weights[members].sum()) / total, member_ids))
    interests.sort(key=lambda interest: -interest.weight)
    return interests


def _spherical_kmeans(
    rows: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Spherical k-means (cosine) with weighted centroids, k-means++ seeding and a few restarts, the restart kept
    being the one that fits the works best; returns labels and unit centroids."""
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for _ in range(_KMEANS_RESTARTS if k > 1 else 1):
        centroids = _seed_centroids(rows, k, rng)
        labels = np.full(len(rows), -1)
        for _ in range(_KMEANS_ITERATIONS):
            new_labels = (rows @ centroids.T).argmax(axis=1)
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            for cluster in range(k):
                members = labels == cluster
                if members.any():
                    centroids[cluster] = _normalise((weights[members, None] * rows[members]).sum(axis=0))
                else:  # an emptied cluster takes the work its centroid explains worst
                    worst = (rows * centroids[labels]).sum(axis=1).argmin()
                    centroids[cluster] = rows[worst]
        distortion = float((1.0 - (rows * centroids[labels]).sum(axis=1)).sum())
        if best is None or distortion < best[0] - _EPS:
            best = (distortion, labels, centroids.copy())
    assert best is not None
    return best[1], best[2]


def _seed_centroids(rows: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [int(rng.integers(len(rows)))]
    distance = 1.0 - rows @ rows[chosen[0]]
    for _ in range(1, k):
        mass = np.maximum(distance, 0.0) ** 2
        pick = int(rng.choice(len(rows), p=mass / mass.sum())) if mass.sum() > _EPS else int(rng.integers(len(rows)))
        chosen.append(pick)
        distance = np.minimum(distance, 1.0 - rows @ rows[pick])
    return rows[chosen].copy()


def _silhouette(rows: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance; a work alone in its cluster counts 0 (as in scikit-learn)."""
    clusters, own, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    if len(clusters) < 2:
        return 0.0
    distance = 1.0 - rows @ rows.T
    np.fill_diagonal(distance, 0.0)
    one_hot = (own[:, None] == np.arange(len(clusters))[None, :]).astype(np.float64)
    # mean distance of every work to every cluster, leaving the work itself out of its own cluster
    mean_to = (distance @ one_hot) / np.maximum(sizes[None, :] - one_hot, 1)
    index = np.arange(len(rows))
    a = mean_to[index, own]
    mean_to[index, own] = np.inf
    b = mean_to.min(axis=1)
    silhouette = np.where(sizes[own] > 1, (b - a) / np.maximum(np.maximum(a, b), _EPS), 0.0)
    return float(silhouette.mean())
