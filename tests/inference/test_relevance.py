"""Relevance floors: the maths on known distributions, the pair sampling, and the floors a gallery carries."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from inference import relevance
from inference.gallery_build import build_gallery
from inference.gallery_store import MANIFEST, Gallery, Manifest, ModelIdentity
from inference.models import Models
from inference.recommenders import Query, get
from inference.relevance import (
    CLIP_TEXT,
    DESCRIPTION_CLIP,
    IMAGE,
    QUANTILE,
    TEXT,
    Floor,
    cross_floor,
    floor_from_scores,
    gallery_floors,
    ordered_pairs,
    serving_floors,
    symmetric_floor,
    unordered_pairs,
)
from tests.factories import link_shared_paintings


def test_the_floor_is_the_chosen_quantile_of_the_pair_scores() -> None:
    rng = np.random.default_rng(0)
    uniform = floor_from_scores(rng.uniform(0.0, 1.0, 200_000))
    assert uniform.floor == pytest.approx(0.99, abs=0.002) and uniform.quantile == QUANTILE == 0.99
    assert uniform.mean == pytest.approx(0.5, abs=0.005) and uniform.pairs == 200_000

    normal = floor_from_scores(rng.normal(0.5, 0.1, 200_000), quantile=0.95)
    assert normal.floor == pytest.approx(0.5 + 1.645 * 0.1, abs=0.003)
    assert normal.std == pytest.approx(0.1, abs=0.002)

    assert floor_from_scores(np.arange(101) / 100).floor == pytest.approx(0.99)  # exact order statistic
    with pytest.raises(ValueError):
        floor_from_scores(np.array([]))
    with pytest.raises(ValueError):
        floor_from_scores(np.ones(3), quantile=1.0)


def test_random_directions_get_the_floor_their_cosine_distribution_predicts() -> None:
    """Cosines of random directions in d dimensions are about N(0, 1/d): the 99th percentile is 2.326/sqrt(d)."""
    d = 256
    vectors = np.random.default_rng(1).normal(size=(400, d)) * 3.0  # scale must not matter
    floor = symmetric_floor(vectors)
    assert floor is not None and floor.pairs == relevance.MAX_PAIRS  # 79 800 pairs: sampled
    assert floor.floor == pytest.approx(2.326 / np.sqrt(d), abs=0.012)
    assert floor.mean == pytest.approx(0.0, abs=0.005) and floor.std == pytest.approx(1 / np.sqrt(d), abs=0.004)


def test_identical_works_admit_each_other_despite_rounding() -> None:
    same = np.tile(np.random.default_rng(2).normal(size=(1, 8)).astype(np.float32), (5, 1))
    floor = symmetric_floor(same)
    assert floor is not None and floor.floor == pytest.approx(1.0, abs=1e-6)
    assert floor.admits(1.0 - 5e-7) and floor.admits(floor.floor) and not floor.admits(floor.floor - 1e-3)


def test_small_galleries_use_every_pair_and_large_ones_a_fixed_sample() -> None:
    first, second = unordered_pairs(5)
    assert sorted(zip(first.tolist(), second.tolist(), strict=True)) == [
        (i, j) for i in range(5) for j in range(i + 1, 5)
    ]
    first, second = unordered_pairs(1000, max_pairs=3000)
    pairs = set(zip(first.tolist(), second.tolist(), strict=True))
    assert len(pairs) == 3000 and all(0 <= i < j < 1000 for i, j in pairs)
    again = unordered_pairs(1000, max_pairs=3000)
    assert np.array_equal(again[0], first) and np.array_equal(again[1], second)  # same gallery, same floor

    first, second = ordered_pairs(4)
    assert len(set(zip(first.tolist(), second.tolist(), strict=True))) == 12 and not np.any(first == second)
    first, second = ordered_pairs(500, max_pairs=2000, max_queries=50)
    assert len(set(zip(first.tolist(), second.tolist(), strict=True))) == 2000
    assert not np.any(first == second) and len(np.unique(first)) <= 50


def test_a_gallery_of_fewer_than_two_works_has_no_floor() -> None:
    one = np.ones((1, 4), dtype=np.float32)
    assert symmetric_floor(one) is None
    assert cross_floor(one, lambda ids: one[ids]) is None
    assert gallery_floors(one, one, lambda ids: one[ids]) == {}


def test_the_cross_modal_floor_pairs_a_text_with_other_works_images_only() -> None:
    """Orthonormal works: each text matches its own image (cosine 1) and no other (0). Self-pairs would make
    the floor 1; left out, it is 0. Only the sampled works' descriptions are embedded."""
    images = np.eye(30, dtype=np.float32)
    asked: list[int] = []

    def embed(ids: list[int]) -> np.ndarray:
        asked.extend(ids)
        return images[ids]

    floor = cross_floor(images, embed, max_queries=10)
    assert floor is not None and floor.floor == pytest.approx(0.0) and floor.pairs == 10 * 29
    assert len(asked) == len(set(asked)) == 10


def test_gallery_floors_cover_each_space() -> None:
    rng = np.random.default_rng(3)
    images, texts = rng.normal(size=(20, 16)), rng.normal(size=(20, 8))
    floors = gallery_floors(images, texts, lambda ids: rng.normal(size=(len(ids), 16)))
    assert set(floors) == {IMAGE, TEXT, CLIP_TEXT}
    assert floors[IMAGE].pairs == floors[TEXT].pairs == 190 and floors[CLIP_TEXT].pairs == 380


def _manifest(floors: dict[str, Floor] | None) -> Manifest:
    return Manifest(ModelIdentity("ViT-B-32", None, 512, "minilm", 384), "llava", 3, relevance=floors)


def test_floors_survive_the_manifest_round_trip_and_an_older_manifest_has_none() -> None:
    floors = {IMAGE: Floor(0.8, 0.99, 91, 0.5, 0.1), CLIP_TEXT: Floor(0.25, 0.99, 182, 0.1, 0.05)}
    assert Manifest.from_json(_manifest(floors).to_json()).relevance == floors
    assert Manifest.from_json(_manifest({}).to_json()).relevance == {}  # a one-work gallery: built, none apply

    older = json.loads(_manifest(floors).to_json())
    del older["relevance"]
    assert Manifest.from_json(json.dumps(older)).relevance is None


def test_a_built_gallery_stores_a_floor_per_space(tiny_gallery: Path) -> None:
    manifest = json.loads((tiny_gallery / MANIFEST).read_text())
    count = manifest["count"]
    assert set(manifest["relevance"]) == {IMAGE, TEXT, CLIP_TEXT, DESCRIPTION_CLIP}
    for space, pairs in (
        (IMAGE, count * (count - 1) // 2),
        (TEXT, count * (count - 1) // 2),
        (CLIP_TEXT, count**2 - count),
        (DESCRIPTION_CLIP, count**2 - count),  # a work's title against the other works' descriptions
    ):
        stored = manifest["relevance"][space]
        assert stored["pairs"] == pairs and stored["quantile"] == QUANTILE
        assert -1.0 <= stored["mean"] <= stored["floor"] <= 1.0 + 1e-6
    assert Gallery.load(tiny_gallery).manifest.relevance == {
        space: Floor.from_dict(raw) for space, raw in manifest["relevance"].items()
    }


def test_the_service_applies_stored_floors_unless_switched_off_and_warns_about_an_older_gallery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    floors = {IMAGE: Floor(0.8, 0.99, 91, 0.5, 0.1)}
    with caplog.at_level(logging.INFO, logger="inference.relevance"):
        assert serving_floors(floors, enabled=True) == floors
        assert not caplog.records
        assert serving_floors(floors, enabled=False) == {}
        assert serving_floors(None, enabled=True, where="/srv/gallery") == {}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "/srv/gallery has no relevance floors" in warnings[0]


def test_an_older_gallery_loads_without_floors(tiny_gallery: Path, tmp_path: Path) -> None:
    copy = tmp_path / "older"
    shutil.copytree(tiny_gallery, copy)
    raw = json.loads((copy / MANIFEST).read_text())
    del raw["relevance"]
    (copy / MANIFEST).write_text(json.dumps(raw))
    assert Gallery.load(copy).manifest.relevance is None




@pytest.mark.gallery
def test_real_paintings_get_floors_and_each_keeps_itself(tiny_models: Models, tmp_path: Path) -> None:
    """The first 16 paintings of ../shared/gallery (linked, not copied). Random weights: a smoke test of the floors
    on real images, not of their quality (`benchmarks/bench_relevance.py` reports the whole gallery)."""
    images, _ = link_shared_paintings(tmp_path)
    build_gallery(images, tmp_path / "out", tiny_models, progress=False, identify_calibration=8)

    gallery = Gallery.load(tmp_path / "out")
    floors, n = gallery.manifest.relevance or {}, len(gallery)
    assert {space: floor.pairs for space, floor in floors.items()} == {
        IMAGE: n * (n - 1) // 2,
        TEXT: n * (n - 1) // 2,
        CLIP_TEXT: n * (n - 1),
        DESCRIPTION_CLIP: n * (n - 1),
    }
    assert all(floor.mean <= floor.floor for floor in floors.values())
    by_look = get("by_look")
    for artwork_id in range(n):
        hits = by_look.recommend(Query(image_vector=gallery.vectors([artwork_id])[0]), gallery, 5)
        assert hits[0].artwork.id == artwork_id and all(floors[IMAGE].admits(hit.score) for hit in hits)
