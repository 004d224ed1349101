"""Synthetic artwork vectors for the taste and suggestion tests: kinds of work as clusters on the unit sphere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedback.taste import FeedbackEvent

DIM = 64


def unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector, axis=-1, keepdims=True)).astype(np.float32)


def cluster(rng: np.random.Generator, centre: np.ndarray, count: int, spread: float = 0.6) -> np.ndarray:
    """Works of one kind: the centre plus noise (spread 0.6 in 64 dims: cosine ~0.75 between two of them)."""
    return unit(centre + spread * unit(rng.standard_normal((count, DIM))))


class Gallery:
    """Artwork ids and vectors; `ids` of a kind, `vectors(ids)` for TasteProfile.build and for candidates."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []

    def add(self, vectors: np.ndarray) -> list[int]:
        start = len(self.rows)
        self.rows.extend(vectors)
        return list(range(start, start + len(vectors)))

    def __call__(self, ids: Sequence[int]) -> np.ndarray:
        return np.stack([self.rows[i] for i in ids]).astype(np.float32)


def likes(ids: list[int], age_days: float = 0.0) -> list[FeedbackEvent]:
    return [FeedbackEvent(i, 1.0, age_days) for i in ids]
