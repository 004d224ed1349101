"""Zero-shot tags: the tagger's ranking against the CLIP text tower, the tags stored with every gallery work and
served with its hits, and the tags of a query photo in /v1/look and /v1/analyze."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from inference import tagging
from inference.api import create_app
from inference.gallery_store import Gallery
from inference.models import Models
from inference.settings import InferenceSettings
from inference.tag_labels import GENRES, KINDS, LABELS, MOODS, STYLES
from inference.tagging import TAG_LABELS, TAG_LABELS_KEY, Tagger, label_digest, load_label_vectors
from tests.factories import image_bytes, textured_artwork
from tests.inference.conftest import AUTH
from tests.inference.test_arena import Counting


@pytest.fixture(scope="module")
def tagger(tiny_models: Models) -> Tagger:
    return Tagger.build(tiny_models.clip)


def assert_well_formed(tags: list[dict[str, object]]) -> None:
    """Three tags per kind, best first, known labels, scores in [0, 1] summing to at most 1 per kind."""
    assert [tag["kind"] for tag in tags] == [kind for kind in KINDS for _ in range(3)]
    known = {(label.kind, label.name): label.ru for label in LABELS}
    for kind in KINDS:
        mine = [tag for tag in tags if tag["kind"] == kind]
        scores = [float(tag["score"]) for tag in mine]  # type: ignore[arg-type]
        assert all(0.0 <= score <= 1.0 for score in scores) and sum(scores) <= 1.0
        assert scores == sorted(scores, reverse=True)
        assert all(known[(kind, str(tag["name"]))] == tag["ru"] for tag in mine)


def test_the_label_sets_are_curated_with_russian_names_and_several_prompts() -> None:
    assert len(STYLES) >= 20 and len(GENRES) >= 15 and len(MOODS) >= 12
    for label in LABELS:
        assert label.ru and len(label.prompts()) >= 3 and len(set(label.prompts())) == len(label.prompts())
    assert len({(label.kind, label.name) for label in LABELS}) == len(LABELS)


@pytest.mark.parametrize(("kind", "name"), [("style", "baroque"), ("genre", "seascape"), ("mood", "melancholic")])
def test_an_image_vector_equal_to_a_labels_text_vector_is_tagged_with_that_label_first(
    tagger: Tagger, kind: str, name: str
) -> None:
    """A CLIP whose image and text vectors agree: the image vector is the label's own averaged prompt vector."""
    tags = tagger.tag(tagger.vector(kind, name))[0]

    first = next(tag for tag in tags if tag.kind == kind)
    assert first.name == name
    others = [tag for tag in tags if tag.kind == kind][1:]
    assert all(first.score > other.score for other in others)


def test_tags_of_a_batch_are_the_tags_of_each_vector(tagger: Tagger) -> None:
    vectors = np.stack([tagger.vector("style", "cubism"), tagger.vector("genre", "portrait")])
    assert tagger.tag(vectors) == [tagger.tag(vectors[0])[0], tagger.tag(vectors[1])[0]]


def test_every_gallery_work_carries_its_tags_and_hits_show_them(tiny_gallery: Path, tagger: Tagger) -> None:
    gallery = Gallery.load(tiny_gallery)

    for artwork in gallery.artworks:
        assert_well_formed(artwork.tags)
    # the stored tags are the tagger's for the work's image vector
    expected = tagger.tag_dicts(gallery.vectors([0]))[0]
    assert [tag["name"] for tag in gallery.artworks[0].tags] == [tag["name"] for tag in expected]
    assert gallery.search_image(gallery.vectors([3]), 1)[0][0].to_dict()["tags"] == gallery.artworks[3].tags


async def test_look_and_analyze_return_the_photos_tags(api: httpx.AsyncClient, tagger: Tagger) -> None:
    photo = {"image": ("photo.jpg", image_bytes(textured_artwork(500)), "image/jpeg")}

    look = await api.post("/v1/look", files=photo, headers=AUTH)
    analyze = await api.post("/v1/analyze", data={"recommenders": "by_look"}, files=photo, headers=AUTH)

    assert look.status_code == analyze.status_code == 200, look.text
    assert_well_formed(look.json()["tags"])
    assert look.json()["tags"] == analyze.json()["tags"]
    hits = look.json()["recommendations"]["by_look"]
    assert hits and all(len(hit["tags"]) == 9 for hit in hits)


# --- the label vectors are a gallery file ---


def test_a_built_gallery_holds_the_label_vectors(tiny_gallery: Path, tiny_models: Models, tagger: Tagger) -> None:
    stored = load_label_vectors(tiny_gallery, label_digest(tiny_models.identity()))

    assert stored is not None and stored.shape == tagger.label_vectors.shape and stored.dtype == np.float32
    assert np.allclose(stored, tagger.label_vectors, atol=1e-5)
    assert load_label_vectors(tiny_gallery, "another digest") is None


async def _started_tagger(settings: InferenceSettings, models: Models) -> Tagger:
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        started: Tagger = app.state.tagger
    return started


async def test_the_service_reads_the_label_vectors_without_the_text_tower(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, tiny_gallery: Path, tagger: Tagger
) -> None:
    counting = Counting(tiny_models)

    started = await _started_tagger(make_settings(), counting.wrapped)

    assert counting.texts == 0 and started.loaded
    assert np.allclose(started.label_vectors, tagger.label_vectors, atol=1e-5)
    vectors = Gallery.load(tiny_gallery).vectors(list(range(4)))
    assert started.tag(vectors) == tagger.tag(vectors)  # the tags a fresh Tagger.build gives


async def test_the_service_embeds_the_labels_again_when_they_changed(
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    tiny_gallery: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    changed = LABELS[0].__class__(**{**LABELS[0].__dict__, "phrases": ("glowing stained glass",)})
    monkeypatch.setattr(tagging, "LABELS", (changed, *LABELS[1:]))
    files = {name: (tiny_gallery / name).read_bytes() for name in (TAG_LABELS, TAG_LABELS_KEY)}
    counting = Counting(tiny_models)

    with caplog.at_level("INFO", logger="inference.tagging"):
        started = await _started_tagger(make_settings(), counting.wrapped)

    assert not started.loaded and counting.texts == sum(len(label.prompts()) for label in tagging.LABELS)
    assert [r.message for r in caplog.records if TAG_LABELS in r.message and "other models or labels" in r.message]
    fresh = Tagger.build(tiny_models.clip)  # with the changed label
    assert np.allclose(started.label_vectors, fresh.label_vectors, atol=1e-5)
    assert not np.allclose(started.label_vectors[0], np.load(tiny_gallery / TAG_LABELS)[0], atol=1e-3)
    # the service never writes into the gallery: it may be a read-only volume
    assert {name: (tiny_gallery / name).read_bytes() for name in files} == files
