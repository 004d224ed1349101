"""Search by colour in large galleries: the soft Lab histograms rank like the exact score, and the index built on
them (the size-following `vector_index`, forced to IVF here) finds the same works as scoring every palette."""

from __future__ import annotations

import numpy as np
import pytest

from inference.colour_index import ColourIndex
from inference.palette import best_matches, colour_features, colour_scores, palette_features, srgb_to_lab
from inference.vector_index import IndexSettings


def random_palettes(count: int, seed: int = 0) -> np.ndarray:
    """Palettes of 5 random sRGB colours with Dirichlet weights, heaviest first."""
    rng = np.random.default_rng(seed)
    colours = srgb_to_lab(rng.integers(0, 256, (count, 5, 3))).astype(np.float32)
    weights = np.sort(rng.dirichlet(np.full(5, 0.6), count), axis=1)[:, ::-1].astype(np.float32)
    return np.concatenate([colours, weights[..., None]], axis=2)


QUERIES = srgb_to_lab(np.random.default_rng(9).integers(0, 256, (20, 3)))


def test_soft_histograms_rank_works_like_the_exact_score() -> None:
    palettes = random_palettes(3000)
    features = palette_features(palettes)
    for lab in QUERIES[:5]:
        approximate = features @ colour_features(lab)[0]
        assert np.corrcoef(approximate, colour_scores(palettes, lab))[0, 1] > 0.99


def test_a_small_gallery_is_scored_exactly() -> None:
    palettes = random_palettes(500)
    colours = ColourIndex.build(palettes)
    assert colours.index is None
    ids, scores = colours.search(QUERIES[0], 5, exclude={3})
    expected_ids, expected_scores = best_matches(palettes, QUERIES[0], 5, {3})
    assert np.array_equal(ids, expected_ids) and np.array_equal(scores, expected_scores) and 3 not in ids


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_the_index_finds_the_works_that_exact_scoring_finds(kind: str) -> None:
    palettes = random_palettes(8000, seed=1)
    settings = IndexSettings(exact_search_max=0 if kind == "ivf" else 10**9)

    colours = ColourIndex.build(palettes, exact_max=0, settings=settings)

    assert colours.index is not None and colours.index.spec.kind == kind
    recalls = []
    for lab in QUERIES:
        truth, truth_scores = best_matches(palettes, lab, 10)
        ids, scores = colours.search(lab, 10)
        recalls.append(len(set(truth.tolist()) & set(ids.tolist())) / 10)
        assert np.allclose(scores, colour_scores(palettes[ids], lab))  # exact scores, best first
        assert list(scores) == sorted(scores, reverse=True)
    assert np.mean(recalls) >= 0.97 and min(recalls) >= 0.8
    # removed works are never returned
    best = int(colours.search(QUERIES[0], 1)[0][0])
    assert best not in colours.search(QUERIES[0], 10, exclude={best})[0]
