"""Identification of the exact work in a photo (inference/identify), on procedural paintings made here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from inference.identify import Identifier, IdentifyConfig, Threshold
from inference.identify.geometry import plausible_quad
from inference.identify.inverted import InvertedIndex
from inference.identify.synthetic import painting, photograph

CONFIG = IdentifyConfig(
    gallery_side=384, gallery_keypoints=400, query_side=768, query_keypoints=1000, vocabulary_words=512, shortlist=10
)
WORKS = 24


@pytest.fixture(scope="module")
def works() -> list[np.ndarray]:
    rng = np.random.default_rng(2024)
    return [painting(rng, long_side=384) for _ in range(WORKS + 4)]  # the last four are not in the gallery


@pytest.fixture(scope="module")
def identifier(works: list[np.ndarray]) -> Identifier:
    return Identifier.build(works[:WORKS], CONFIG)


def _corner_error(found: list[tuple[float, float]], truth: np.ndarray, image: np.ndarray) -> float:
    """Largest corner error as a share of the photo's diagonal."""
    diagonal = float(np.hypot(*image.shape[:2]))
    return float(np.abs(np.array(found) - truth).max()) / diagonal


def test_a_warped_occluded_noisy_jpeg_photo_of_a_gallery_work_is_identified_with_its_corners(
    identifier: Identifier, works: list[np.ndarray]
) -> None:
    rng = np.random.default_rng(7)
    for index in (0, 5, 11, 23):
        photo = photograph(rng, works[index], photo_side=768, max_tilt_deg=40, max_cut=0.3, jpeg_quality=60)
        match = identifier.identify(photo.image)
        assert match is not None, index
        assert match.index == index
        assert match.inliers >= identifier.threshold.min_inliers
        assert 0.99 <= match.confidence <= 1.0
        assert len(match.corners) == 4
        assert _corner_error(match.corners, photo.corners, photo.image) < 0.03


def test_a_photo_of_a_work_outside_the_gallery_gets_no_match(identifier: Identifier, works: list[np.ndarray]) -> None:
    rng = np.random.default_rng(8)
    for work in works[WORKS:]:
        assert identifier.identify(photograph(rng, work, photo_side=768).image) is None


def test_unusable_images_give_no_match_rather_than_an_error(identifier: Identifier) -> None:
    rng = np.random.default_rng(9)
    images = [
        np.zeros((4, 4, 3), np.uint8),  # tiny
        np.zeros((0, 0, 3), np.uint8),  # empty
        np.full((480, 640, 3), 128, np.uint8),  # flat colour
        rng.integers(0, 256, (300, 400), dtype=np.uint8),  # grey noise, 2-D
        rng.integers(0, 256, (300, 400, 4), dtype=np.uint8),  # RGBA noise
        np.zeros((10, 10, 2), np.uint8),  # not an image layout
    ]
    for image in images:
        assert identifier.identify(image) is None


def test_save_and_load_give_the_same_answer(identifier: Identifier, works: list[np.ndarray], tmp_path: Path) -> None:
    photo = photograph(np.random.default_rng(10), works[3], photo_side=768)
    identifier.save(tmp_path)
    assert not list(tmp_path.glob("*.pkl"))
    for mmap in (False, True):
        loaded = Identifier.load(tmp_path, mmap=mmap)
        assert loaded.config == identifier.config
        assert loaded.threshold == identifier.threshold
        assert loaded.identify(photo.image) == identifier.identify(photo.image)
    assert identifier.bytes_per_work() < 10_000


def test_loading_another_format_version_is_refused_with_a_clear_message(identifier: Identifier, tmp_path: Path) -> None:
    identifier.save(tmp_path)
    header = json.loads((tmp_path / "identify.json").read_text())
    (tmp_path / "identify.json").write_text(json.dumps({**header, "format": 0}))
    with pytest.raises(ValueError, match="rebuild the gallery"):
        Identifier.load(tmp_path)


def test_calibration_keeps_every_calibration_negative_below_the_threshold_and_above_the_floor() -> None:
    quiet = Threshold.calibrate([0, 0, 3, 1, 0])
    assert quiet.min_inliers == 15  # the floor
    noisy = Threshold.calibrate([10, 12, 30, 9, 11, 14])
    assert noisy.min_inliers >= 31
    assert noisy.confidence(noisy.min_inliers) >= 0.99
    assert noisy.confidence(5) == 0.0
    assert Threshold.calibrate([]) == Threshold.default()


def test_calibrating_on_photos_of_outside_works_leaves_them_unclaimed(
    identifier: Identifier, works: list[np.ndarray]
) -> None:
    rng = np.random.default_rng(11)
    negatives = [photograph(rng, painting(rng, 384), photo_side=768).image for _ in range(3)]
    calibrated = Identifier(**{**identifier.__dict__, "_extractor": None})
    scores = calibrated.calibrate(negatives)
    assert len(scores) == 3 and calibrated.threshold.negatives == 3
    assert all(s < calibrated.threshold.min_inliers for s in scores)


def test_the_inverted_file_ranks_the_work_that_shares_the_rarest_words_first() -> None:
    words = [np.array([1, 2, 3, 3]), np.array([1, 4, 5]), np.array([1, 2, 6, 7])]
    index = InvertedIndex.build(words, vocabulary_size=8)
    assert list(index.shortlist(np.array([6, 7, 1]), 5)) == [2]  # word 1 is in every work: it says nothing
    assert list(index.shortlist(np.array([2, 3]), 5)) == [0, 2]
    assert list(index.shortlist(np.array([5]), 5)) == [1]  # works sharing no word are left out
    assert index.shortlist(np.array([0]), 5).size == 0


def test_implausible_quadrilaterals_are_rejected() -> None:
    size = (400.0, 300.0)
    square = np.array([[10, 10], [410, 10], [410, 310], [10, 310]], float)
    assert plausible_quad(square, size)
    assert not plausible_quad(square[::-1].copy(), size)  # mirrored
    assert not plausible_quad(square[[0, 2, 1, 3]], size)  # self-intersecting
    assert not plausible_quad(np.array([[0, 0], [400, 0], [400, 10], [0, 10]], float), size)  # squashed
    assert not plausible_quad(np.array([[0, 0], [400, 0], [210, 300], [190, 300]], float), size)  # a triangle-ish
