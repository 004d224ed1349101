"""Honest relevance: a similarity floor per search space, so a set shows nothing rather than noise.

A hit is shown only when it is more similar to the query than `QUANTILE` of *random pairs of gallery works* are to
each other. The floor is measured at gallery build, per space, from the works themselves, because the scales differ
by model and by space and nothing else knows them: CLIP image-to-image cosines of paintings sit around 0.5, CLIP
text-to-image ones around 0.2, MiniLM description-to-description ones somewhere else again, and random weights
(tests) put every cosine near 1.

- **Pairs.** Up to `MAX_PAIRS` distinct pairs, drawn with a fixed seed (the same gallery always gets the same
  floors); every pair when a gallery has fewer. The symmetric spaces ("image", "text") use unordered pairs i < j. The
  cross-modal space ("clip_text": the CLIP text tower of work i's description against the CLIP image of work j,
  i != j) is not symmetric, so it uses ordered pairs, with the descriptions taken from at most `MAX_CROSS_QUERIES`
  works so that a 100 k-work build embeds a thousand texts, not all of them. A gallery with fewer than two works has
  no pairs and so no floor.
- **Why the 99th percentile.** The floor is a false-positive rate per shown work: an unrelated work clears it with
  probability 1 - q. At q = 0.95 one random work in twenty clears, so in a 300-work gallery some fifteen unrelated
  works clear for *any* in-domain photo and the floor never bites. q = 0.99 is one in a hundred, and it is the
  highest quantile that 20 000 pairs still estimate steadily (200 pairs above it; the estimate moves by about the
  gap between neighbouring order statistics, a few thousandths of a cosine). Genuine neighbours with trained CLIP
  (same work, same subject or painter) score well above it. Higher quantiles (99.9th) would need ten times the pairs
  and would also drop true but loose matches; the floor is meant to remove noise, not to rank.
- **What it cannot do.** For a large gallery the best of N unrelated works will clear any per-pair floor; the floor
  removes sets for photos that are far from the whole gallery (a cat, a selfie, a description that matches no
  picture), which is what users meant by "nothing rather than noise". Identification (`inference/identify`) is what
  says "this is it".

`mean` and `std` of the pair scores are stored next to the floor to make a drifting gallery or model visible.
Pure numpy: the build computes, the manifest stores (`gallery_store.Manifest.relevance`), recommenders compare.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

QUANTILE = 0.99
"""A shown work must beat this share of random gallery pairs (see the module docstring for why 0.99)."""
MAX_PAIRS = 20_000
"""Pairs sampled per space: the 99th percentile then rests on 200 pairs above it."""
MAX_CROSS_QUERIES = 1_000
"""Descriptions embedded with CLIP's text tower for the cross-modal space: ~20 images each at 20 000 pairs."""
SEED = 0
TOLERANCE = 1e-5
"""float32 inner products of the same two vectors differ by a few ulps between FAISS and numpy: a hit exactly at the
floor (all works alike, as with random weights) must not fall on either side by chance."""
_CHUNK = 4096

IMAGE, TEXT, CLIP_TEXT, DESCRIPTION_CLIP = "image", "text", "clip_text", "description_clip"
SPACES = (IMAGE, TEXT, CLIP_TEXT, DESCRIPTION_CLIP)
"""image: CLIP image vs CLIP image; text: MiniLM description vs description; clip_text: CLIP text of a description
vs CLIP image (the space `by_text_clip` and `words_look` search); description_clip: a short query's CLIP text vector
vs the descriptions' CLIP text vectors (`words_meaning`, floored by `inference.words_index.words_floor`)."""


@dataclass(frozen=True)
class Floor:
    """The floor of one space and the pair statistics it came from."""

    floor: float
    quantile: float
    pairs: int
    mean: float
    std: float

    def admits(self, score: float) -> bool:
        return score >= self.floor - TOLERANCE

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, object]) -> Floor:
        return cls(
            floor=float(raw["floor"]),  # type: ignore[arg-type]
            quantile=float(raw["quantile"]),  # type: ignore[arg-type]
            pairs=int(raw["pairs"]),  # type: ignore[call-overload]
            mean=float(raw["mean"]),  # type: ignore[arg-type]
            std=float(raw["std"]),  # type: ignore[arg-type]
        )


def floor_from_scores(scores: np.ndarray, quantile: float = QUANTILE) -> Floor:
    """The `quantile` of the pair scores (linear interpolation between order statistics), with their statistics."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(scores):
        raise ValueError("no pair scores to take a floor from")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    return Floor(
        floor=float(np.quantile(scores, quantile)),
        quantile=quantile,
        pairs=len(scores),
        mean=float(scores.mean()),
        std=float(scores.std()),
    )


def unordered_pairs(n: int, max_pairs: int = MAX_PAIRS, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs i < j of n works: all n(n-1)/2 of them when that is at most `max_pairs`, else a sample."""
    total = n * (n - 1) // 2
    if total <= max_pairs:
        first, second = np.triu_indices(n, k=1)
        return first.astype(np.int64), second.astype(np.int64)
    picked = np.sort(np.random.default_rng(seed).choice(total, size=max_pairs, replace=False))
    rows = np.arange(n, dtype=np.int64)
    row_start = rows * n - rows * (rows + 1) // 2  # linear index of pair (i, i + 1) in row-major i < j order
    first = np.searchsorted(row_start, picked, side="right") - 1
    second = picked - row_start[first] + first + 1
    return first, second


def ordered_pairs(
    n: int, max_pairs: int = MAX_PAIRS, seed: int = SEED, max_queries: int = MAX_CROSS_QUERIES
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs (i, j), i != j, with i among at most `max_queries` works: all of them when they are few."""
    rng = np.random.default_rng(seed)
    queries = np.arange(n, dtype=np.int64)
    if n > max_queries:
        queries = np.sort(rng.choice(n, size=max_queries, replace=False))
    total = len(queries) * (n - 1)
    linear = np.arange(total, dtype=np.int64) if total <= max_pairs else np.sort(rng.choice(total, max_pairs, False))
    first = queries[linear // (n - 1)]
    rest = linear % (n - 1)
    second = rest + (rest >= first)  # skip j == i
    return first, second


def pair_scores(left: np.ndarray, right: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine of left[first[p]] with right[second[p]] for every pair p (rows need not be normalised)."""
    left, right = _normalised(left), _normalised(right)
    out = np.empty(len(first), dtype=np.float64)
    for start in range(0, len(first), _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = np.einsum("ij,ij->i", left[first[start:stop]], right[second[start:stop]])
    return out


def symmetric_floor(vectors: np.ndarray, quantile: float = QUANTILE, max_pairs: int = MAX_PAIRS) -> Floor | None:
    """The floor of one space searched with its own kind of vector ("image", "text"); None below two works."""
    if len(vectors) < 2:
        return None
    first, second = unordered_pairs(len(vectors), max_pairs)
    return floor_from_scores(pair_scores(vectors, vectors, first, second), quantile)


def cross_floor(
    images: np.ndarray,
    embed_texts: Callable[[list[int]], np.ndarray],
    quantile: float = QUANTILE,
    max_pairs: int = MAX_PAIRS,
    max_queries: int = MAX_CROSS_QUERIES,
) -> Floor | None:
    """The floor of text-to-image search: `embed_texts(ids)` gives the text vectors of those works' descriptions
    (only the sampled ones are embedded). None below two works."""
    n = len(images)
    if n < 2:
        return None
    first, second = ordered_pairs(n, max_pairs, max_queries=max_queries)
    asked = np.unique(first)
    texts = np.asarray(embed_texts([int(i) for i in asked]), dtype=np.float32)
    row_of = np.searchsorted(asked, first)
    return floor_from_scores(pair_scores(texts, images, row_of, second), quantile)


def gallery_floors(
    image_vectors: np.ndarray, text_vectors: np.ndarray, embed_texts: Callable[[list[int]], np.ndarray]
) -> dict[str, Floor]:
    """Every space's floor for a gallery (none below two works); `embed_texts(ids)`: CLIP text vectors of those
    works' descriptions."""
    floors = {
        IMAGE: symmetric_floor(image_vectors),
        TEXT: symmetric_floor(text_vectors),
        CLIP_TEXT: cross_floor(image_vectors, embed_texts),
    }
    return {space: floor for space, floor in floors.items() if floor is not None}


def serving_floors(
    stored: Mapping[str, Floor] | None, enabled: bool, where: object = "the gallery"
) -> dict[str, Floor]:
    """The floors the service applies: none when switched off, or when the gallery predates them (logged once,
    at start, since sets are then unfiltered)."""
    if not enabled:
        logger.info("relevance floors are switched off (INFERENCE_RELEVANCE_FLOOR=false): sets are not filtered")
        return {}
    if stored is None:
        logger.warning(
            "%s has no relevance floors (built before they existed): sets are not filtered; rebuild it to get them",
            where,
        )
        return {}
    return dict(stored)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
