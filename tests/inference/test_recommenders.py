"""The recommender registry, fusion, the gallery's vectors and index checks, and candidate selection."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from feedback.taste import FeedbackEvent, TasteProfile
from inference import suggestions
from inference.api import create_app
from inference.gallery_store import (
    TEXT_INDEX,
    Artwork,
    Gallery,
    GalleryMismatchError,
    Hit,
    Manifest,
    ModelIdentity,
    build_index,
)
from inference.models import Models
from inference.recommenders import (
    REGISTRY,
    MissingFeature,
    NeedsProfile,
    Query,
    UnknownRecommender,
    get,
    names,
    register,
    required_indices,
)
from inference.recommenders.fusion import reciprocal_rank_fusion
from inference.relevance import Floor, gallery_floors
from inference.settings import InferenceSettings


def test_the_registry_knows_every_recommender_and_refuses_others() -> None:
    assert names() == ["by_look", "by_meaning", "by_text_clip", "fused", "for_you", "words_look", "words_meaning"]
    assert get("fused").name == "fused"
    with pytest.raises(UnknownRecommender, match="by_vibes"):
        get("by_vibes")
    with pytest.raises(ValueError, match="twice"):
        register(REGISTRY["by_look"])


def test_the_registry_says_which_indices_each_recommender_searches() -> None:
    assert required_indices() == {
        "image": ["by_look", "by_text_clip", "fused", "for_you", "words_look"],
        "text": ["by_meaning", "fused", "for_you"],
        "description_clip": ["words_meaning"],
    }
    assert required_indices([get("by_look")]) == {"image": ["by_look"]}


def _hits(*artwork_ids: int) -> list[Hit]:
    return [Hit(Artwork(i, f"{i}.jpg", "sha"), 1.0 - n / 10) for n, i in enumerate(artwork_ids)]


def test_rrf_rewards_agreement_over_a_single_first_place() -> None:
    fused = reciprocal_rank_fusion([_hits(1, 2, 3), _hits(4, 2, 3), _hits(5, 3, 2)])
    assert [hit.artwork.id for hit in fused][:2] == [2, 3]  # second/third everywhere beats first once
    assert fused[0].score == pytest.approx(2 / 62 + 1 / 63)
    assert {hit.artwork.id for hit in fused} == {1, 2, 3, 4, 5}
    assert reciprocal_rank_fusion([]) == []


def test_recommenders_refuse_queries_without_their_features(tiny_gallery: Path) -> None:
    gallery = Gallery.load(tiny_gallery)
    with pytest.raises(MissingFeature, match="clip_text_vector"):
        get("by_text_clip").recommend(Query(image_vector=np.ones(gallery.image_index.d)), gallery, 3)
    with pytest.raises(NeedsProfile):
        get("for_you").recommend(Query(), gallery, 3)


def test_gallery_vectors_are_the_image_index_rows(tiny_gallery: Path) -> None:
    gallery = Gallery.load(tiny_gallery)
    rows = gallery.vectors([3, 1, 3])
    assert rows.shape == (3, gallery.image_index.d) and rows.dtype == np.float32
    np.testing.assert_array_equal(rows[0], gallery.image_index.reconstruct(3))
    np.testing.assert_array_equal(rows[1], gallery.image_index.reconstruct(1))
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert gallery.vectors([]).shape == (0, gallery.image_index.d)
    for bad in ([len(gallery)], [-1]):
        with pytest.raises(IndexError):
            gallery.vectors(bad)


def _without_text_index(tiny_gallery: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "no-text-index"
    shutil.copytree(tiny_gallery, copy)
    (copy / TEXT_INDEX).unlink()
    return copy


def test_a_gallery_without_an_index_a_recommender_needs_is_refused(tiny_gallery: Path, tmp_path: Path) -> None:
    copy = _without_text_index(tiny_gallery, tmp_path)
    with pytest.raises(GalleryMismatchError, match=r"text\.faiss.*by_meaning, fused, for_you"):
        Gallery.load(copy, required=required_indices())
    with pytest.raises(GalleryMismatchError, match=r"text\.faiss"):
        Gallery.load(copy)


async def test_the_service_does_not_start_on_such_a_gallery(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, tiny_gallery: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(gallery_dir=_without_text_index(tiny_gallery, tmp_path)), tiny_models)
    with pytest.raises(GalleryMismatchError, match="by_meaning"):
        async with app.router.lifespan_context(app):
            pass


# --- candidates of a large gallery (the tiny one, with the threshold lowered) ---


@pytest.fixture
def as_large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suggestions, "SCAN_ALL_UP_TO", 4)
    monkeypatch.setattr(suggestions, "PER_INTEREST", 3)
    monkeypatch.setattr(suggestions, "EXPLORATION_SAMPLE", 2)
    monkeypatch.setattr(suggestions, "COLD_SAMPLE", 8)


def test_large_gallery_candidates_come_from_the_interests_and_a_sample(tiny_gallery: Path, as_large: None) -> None:
    gallery = Gallery.load(tiny_gallery)
    events = [FeedbackEvent(1, 1.0), FeedbackEvent(2, 1.0)]
    result = suggestions.suggest_for(gallery, events, exclude=[0, 3], k=3, exploration=0.0, seed=4)
    chosen = [s.artwork_id for s in result.suggestions]
    assert len(chosen) == len(set(chosen)) == 3
    assert not set(chosen) & {0, 1, 2, 3}
    assert all(s.because in (1, 2) for s in result.suggestions)

    profile = result.profile
    near = {hit.artwork.id for hit in gallery.search_image(profile.query_vectors(), 3 + 4)[0]}
    candidates = set(suggestions.candidates(gallery, profile, {0, 1, 2, 3}, np.random.default_rng(0)).tolist())
    assert near - {0, 1, 2, 3} <= candidates
    assert not candidates & {0, 1, 2, 3}


def test_large_gallery_onboarding_samples_then_spreads(tiny_gallery: Path, as_large: None) -> None:
    gallery = Gallery.load(tiny_gallery)
    chosen = suggestions.onboarding(gallery, exclude=[5], k=5, seed=1)
    assert len(chosen) == len(set(chosen)) == 5
    assert 5 not in chosen
    assert suggestions.onboarding(gallery, exclude=range(len(gallery)), k=5, seed=1) == []


def test_an_index_the_gallery_format_does_not_have_is_refused(tiny_gallery: Path) -> None:
    with pytest.raises(GalleryMismatchError, match="'sketch' \\(needed by by_sketch\\)"):
        Gallery.load(tiny_gallery, required={"sketch": ["by_sketch"], "image": ["by_look"]})


# --- relevance floors ---


def _cone(rng: np.random.Generator, count: int, dim: int, centre: np.ndarray, spread: float) -> np.ndarray:
    """`count` unit vectors scattered around `centre` (a smaller `spread`: closer together)."""
    points = centre + spread * rng.normal(size=(count, dim)) / np.sqrt(dim)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def paintings() -> tuple[Gallery, np.ndarray, np.ndarray]:
    """A gallery shaped like a real one: 100 works sharing a 'painting' direction (as CLIP's paintings do), six of
    them near-copies of one subject. Returns it, the subject's direction and the painting direction."""
    rng = np.random.default_rng(7)
    dim = 32
    painting = np.eye(dim)[0]
    subject = _cone(rng, 1, dim, painting, 1.0)[0]
    vectors = np.concatenate([_cone(rng, 94, dim, painting, 1.0), _cone(rng, 6, dim, subject, 0.1)])
    artworks = [Artwork(i, f"{i}.jpg", "sha") for i in range(len(vectors))]
    image_index, text_index = build_index(vectors), build_index(vectors)
    floors = gallery_floors(vectors, vectors, lambda ids: vectors[ids])
    manifest = Manifest(ModelIdentity("test", None, dim, "test", dim), "test", len(vectors), relevance=floors)
    return Gallery(Path("unused"), manifest, artworks, image_index, text_index), subject, painting


def _query(vector: np.ndarray) -> Query:
    return Query(image_vector=vector, description="", text_vector=vector, clip_text_vector=vector)


SUBJECT_WORKS = set(range(94, 100))


def test_a_photo_of_the_subject_gets_a_full_set_of_its_near_copies(
    paintings: tuple[Gallery, np.ndarray, np.ndarray],
) -> None:
    gallery, subject, _ = paintings
    for name in ("by_look", "by_meaning", "by_text_clip", "fused"):
        hits = get(name).recommend(_query(subject), gallery, 5)
        assert len(hits) == 5 and {hit.artwork.id for hit in hits} <= SUBJECT_WORKS, name
    own = get("by_look").recommend(_query(gallery.vectors([3])[0]), gallery, 5)
    assert own[0].artwork.id == 3  # a gallery work finds itself (and whatever else clears the floor)
    assert all(hit.score >= (gallery.manifest.relevance or {})["image"].floor for hit in own)


def test_a_photo_far_from_every_painting_gets_empty_sets(paintings: tuple[Gallery, np.ndarray, np.ndarray]) -> None:
    gallery, subject, painting = paintings
    far = Query(image_vector=-painting, description="", text_vector=-painting, clip_text_vector=-painting)
    for name in ("by_look", "by_meaning", "by_text_clip", "fused"):
        assert get(name).recommend(far, gallery, 5) == [], name
    profile = TasteProfile.build([FeedbackEvent(94, 1.0), FeedbackEvent(3, 1.0)], gallery.vectors)
    assert get("for_you").recommend(replace(far, profile=profile), gallery, 5) == []  # taste brings nothing back
    personal = get("for_you").recommend(replace(_query(subject), profile=profile), gallery, 5)
    assert personal and {hit.artwork.id for hit in personal} <= SUBJECT_WORKS


def test_each_recommender_compares_with_its_own_space_floor(paintings: tuple[Gallery, np.ndarray, np.ndarray]) -> None:
    gallery, subject, _ = paintings
    strict, open_ = Floor(2.0, 0.99, 1, 0.0, 0.0), Floor(-2.0, 0.99, 1, 0.0, 0.0)
    for closed, shut_out in (("image", {"by_look"}), ("text", {"by_meaning"}), ("clip_text", {"by_text_clip"})):
        floors = {space: strict if space == closed else open_ for space in ("image", "text", "clip_text")}
        strict_gallery = Gallery(
            gallery.root,
            replace(gallery.manifest, relevance=floors),
            gallery.artworks,
            gallery.image_index,
            gallery.text_index,
        )
        for name in ("by_look", "by_meaning", "by_text_clip"):
            hits = get(name).recommend(_query(subject), strict_gallery, 5)
            assert (hits == []) == (name in shut_out), (closed, name)
        assert len(get("fused").recommend(_query(subject), strict_gallery, 5)) == 5  # two parts still find them


def test_a_gallery_without_floors_is_not_filtered(paintings: tuple[Gallery, np.ndarray, np.ndarray]) -> None:
    gallery, _, painting = paintings
    none: list[dict[str, Floor] | None] = [None, {}]
    for floors in none:
        unfloored = Gallery(
            gallery.root,
            replace(gallery.manifest, relevance=floors),
            gallery.artworks,
            gallery.image_index,
            gallery.text_index,
        )
        assert len(get("by_look").recommend(_query(-painting), unfloored, 5)) == 5
