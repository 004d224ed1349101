"""/v1/recommenders and /v1/analyze with named recommenders: the arena's side of the service."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from inference.gallery_store import Gallery, Hit
from inference.models import Models
from inference.recommenders import REGISTRY, Query, Recommender
from inference.settings import InferenceSettings
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH, serving
from tests.inference.test_api import assert_ranked, upload

PUBLIC = ["by_look", "by_meaning", "by_text_clip", "fused"]
WORDS = ["words_look", "words_meaning"]
"""Text recommenders: listed, but for word searches (/v1/search/text) only."""
IDENTIFY = {"identify_features", "identify_verify"}  # identification runs with every analysis


async def analyze(client: httpx.AsyncClient, photo: bytes, k: int = 3, **form: str) -> httpx.Response:
    return await client.post("/v1/analyze", params={"k": k}, data=form, files=upload(photo), headers=AUTH)


def ids(hits: list[dict[str, Any]]) -> list[int]:
    return [int(hit["artwork_id"]) for hit in hits]


def likes(*artwork_ids: int, value: float = 1.0) -> str:
    return json.dumps([{"artwork_id": i, "value": value, "age_days": 1.5} for i in artwork_ids])


class Counting:
    """Wraps the tiny models to count describer calls and CLIP image and text passes."""

    def __init__(self, models: Models) -> None:
        self.models = models
        self.described = self.images = self.texts = 0
        counting = self

        class Describer:
            name = models.describer.name

            def load(self) -> None:
                models.describer.load()

            def describe(self, images: list[Any]) -> list[str]:
                counting.described += len(images)
                return models.describer.describe(images)

        class Clip:
            name, weights, dim = models.clip.name, models.clip.weights, models.clip.dim

            def load(self) -> None:
                models.clip.load()

            def embed_images(self, images: list[Any]) -> np.ndarray:
                counting.images += len(images)
                return models.clip.embed_images(images)

            def embed_texts(self, texts: list[str]) -> np.ndarray:
                counting.texts += len(texts)
                return models.clip.embed_texts(texts)

        self.wrapped = Models(clip=Clip(), text=models.text, describer=Describer())


# --- the listing ---


async def test_recommenders_are_listed_with_what_they_need(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/recommenders", headers=AUTH)
    assert response.status_code == 200
    listed = {item["name"]: item for item in response.json()["recommenders"]}
    assert set(listed) == {*PUBLIC, "for_you", *WORDS}
    photo = {"personal": False, "text": False}
    assert listed["by_look"] == {"name": "by_look", "needs": ["image"], "fast": True, **photo}
    assert listed["by_meaning"] == {"name": "by_meaning", "needs": ["description"], "fast": False, **photo}
    assert listed["by_text_clip"]["needs"] == ["description"]
    assert listed["fused"] == {"name": "fused", "needs": ["image", "description"], "fast": False, **photo}
    assert listed["for_you"] == {
        "name": "for_you",
        "needs": ["image", "description"],
        "personal": True,
        "fast": False,
        "text": False,
    }
    assert all(listed[name]["text"] and not listed[name]["fast"] for name in WORDS)  # never offered for a photo
    assert (await api.get("/v1/recommenders")).status_code == 401


# --- analyze, one recommender or several ---


@pytest.mark.parametrize("name", PUBLIC)
async def test_analyze_runs_each_recommender_alone(api: httpx.AsyncClient, tiny_gallery: Path, name: str) -> None:
    response = await analyze(api, image_bytes(synthetic_artwork(40 + len(name))), recommenders=name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"image_sha256", "description", "recommendations", "match", "tags", "timings_ms", "models"}
    assert list(body["recommendations"]) == [name]
    assert_ranked(body["recommendations"][name], 3)
    assert set(ids(body["recommendations"][name])) <= set(range(len(Gallery.load(tiny_gallery))))


@pytest.mark.parametrize(
    "pair", [("by_look", "by_text_clip"), ("by_meaning", "fused"), ("by_text_clip", "by_meaning"), ("fused", "by_look")]
)
async def test_analyze_runs_a_pair_in_the_order_asked(api: httpx.AsyncClient, pair: tuple[str, str]) -> None:
    response = await analyze(api, image_bytes(synthetic_artwork(60)), k=4, recommenders=" , ".join(pair))
    assert response.status_code == 200, response.text
    body = response.json()
    assert tuple(body["recommendations"]) == pair
    for hits in body["recommendations"].values():
        assert_ranked(hits, 4)
    assert isinstance(body["description"], str) and body["description"]


async def test_by_look_of_analyze_is_the_set_of_look(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(61))
    look = await api.post("/v1/look", params={"k": 3}, files=upload(photo), headers=AUTH)
    full = await analyze(api, photo, recommenders="fused,by_look")
    assert full.json()["recommendations"]["by_look"] == look.json()["recommendations"]["by_look"]


async def test_by_text_clip_searches_the_image_index_with_the_clip_text_of_the_description(
    api: httpx.AsyncClient, tiny_models: Models, tiny_gallery: Path
) -> None:
    response = await analyze(api, image_bytes(synthetic_artwork(62)), k=5, recommenders="by_text_clip")
    body = response.json()
    vector = tiny_models.clip.embed_texts([body["description"]])
    expected = Gallery.load(tiny_gallery).search_image(vector, 5)[0]
    assert ids(body["recommendations"]["by_text_clip"]) == [hit.artwork.id for hit in expected]
    assert set(body["timings_ms"]) - IDENTIFY == {"decode", "search", "describe", "text_embed", "clip_text", "total"}


async def test_fused_is_the_reciprocal_rank_fusion_of_its_parts(api: httpx.AsyncClient, tiny_gallery: Path) -> None:
    size = len(Gallery.load(tiny_gallery))
    response = await analyze(
        api, image_bytes(synthetic_artwork(63)), k=size, recommenders="by_look,by_meaning,by_text_clip,fused"
    )
    sets = response.json()["recommendations"]
    expected: dict[int, float] = {}
    for part in ("by_look", "by_meaning", "by_text_clip"):
        assert len(sets[part]) == size  # the whole tiny gallery: the fused parts (depth 50) saw the same lists
        for rank, artwork_id in enumerate(ids(sets[part]), start=1):
            expected[artwork_id] = expected.get(artwork_id, 0.0) + 1.0 / (60 + rank)
    fused = {hit["artwork_id"]: hit["score"] for hit in sets["fused"]}
    assert fused.keys() == expected.keys()
    assert all(abs(fused[i] - expected[i]) < 1e-5 for i in fused)
    top = max(expected.values())
    assert sets["fused"][0]["score"] == pytest.approx(top, abs=1e-5)


# --- the describer runs only when needed ---


async def test_the_describer_runs_only_for_recommenders_that_need_the_description(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    counting = Counting(tiny_models)
    async with serving(make_settings(), counting.wrapped) as client:
        counting.texts = 0  # the tagger read its label vectors from the gallery at start; count what requests cost
        looked = await analyze(client, image_bytes(synthetic_artwork(70)), recommenders="by_look")
        assert looked.status_code == 200, looked.text
        assert looked.json()["description"] is None
        assert set(looked.json()["timings_ms"]) - IDENTIFY == {"decode", "clip", "search", "total"}
        assert (counting.described, counting.images, counting.texts) == (0, 1, 0)

        meant = await analyze(client, image_bytes(synthetic_artwork(71)), recommenders="by_meaning")
        assert meant.json()["description"]
        assert set(meant.json()["timings_ms"]) - IDENTIFY == {"decode", "search", "describe", "text_embed", "total"}
        assert (counting.described, counting.images, counting.texts) == (1, 1, 0)  # no CLIP at all

        both = await analyze(client, image_bytes(synthetic_artwork(72)), recommenders="by_look,by_text_clip")
        assert set(both.json()["timings_ms"]) >= {"clip", "describe", "clip_text"}
        assert (counting.described, counting.images, counting.texts) == (2, 2, 1)


# --- for_you ---


async def test_for_you_without_feedback_needs_a_profile(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(80))
    for form in (
        {"recommenders": "for_you"},
        {"recommenders": "by_look,for_you", "feedback": "[]"},
        {"recommenders": "for_you", "feedback": likes(3, 4, value=-1.0)},  # dislikes alone say nothing liked
        {"recommenders": "for_you", "feedback": likes(9999)},  # not a work of this gallery
    ):
        response = await analyze(api, photo, k=3, **form)
        assert response.status_code == 422, form
        assert response.json()["error"] == "needs_profile"


async def test_for_you_reranks_with_the_profile_and_says_because(api: httpx.AsyncClient) -> None:
    liked = {1, 2, 9}
    feedback = json.dumps(
        [{"artwork_id": i, "value": 1.0, "age_days": 3.0} for i in sorted(liked)]
        + [{"artwork_id": 5, "value": -1.0}]  # age_days defaults to 0
    )
    response = await analyze(
        api, image_bytes(synthetic_artwork(81)), k=5, recommenders="for_you,by_look", feedback=feedback
    )
    assert response.status_code == 200, response.text
    body = response.json()
    hits = body["recommendations"]["for_you"]
    assert len(hits) == 5 and len(set(ids(hits))) == 5
    assert all(hit["because"] in liked for hit in hits)
    assert all("because" not in hit for hit in body["recommendations"]["by_look"])
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert "profile" in body["timings_ms"]


async def test_feedback_is_validated_even_when_no_recommender_is_personal(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(82))
    too_many = json.dumps([{"artwork_id": 1, "value": 1.0}] * 2001)
    for feedback in (
        "not json",
        '{"artwork_id": 1}',
        '[{"value": 1}]',
        '[{"artwork_id": -1, "value": 1}]',
        '[{"artwork_id": 1, "value": 3}]',
        '[{"artwork_id": 1, "value": 1, "age_days": -2}]',
        '[{"artwork_id": 1, "value": NaN}]',
        too_many,
    ):
        response = await analyze(api, photo, recommenders="for_you", feedback=feedback)
        assert response.status_code == 422, feedback[:60]
        assert response.json()["error"] == "invalid_request"
    response = await analyze(api, photo, recommenders="by_look", feedback="[oops")
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# --- refusals of the recommenders field ---


async def test_unknown_or_too_many_recommenders_are_refused(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(83))
    unknown = await analyze(api, photo, recommenders="by_look,by_vibes")
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_recommender"
    assert "by_vibes" in unknown.json()["detail"]
    for names in (" , ", "by_look,by_meaning,by_text_clip,fused,for_you"):
        response = await analyze(api, photo, recommenders=names)
        assert response.status_code == 422, names
        assert response.json()["error"] == "invalid_request"
    twice = await analyze(api, photo, recommenders="by_look,by_look")
    assert list(twice.json()["recommendations"]) == ["by_look"]
    empty = await analyze(api, photo, recommenders="")  # an empty form field is an absent one: the default
    assert list(empty.json()["recommendations"]) == ["by_look", "by_meaning"]


# --- adding a recommender ---


class Newest(Recommender):
    """A test recommender: the last k works of the gallery, whatever the photo."""

    name = "newest"
    uses = frozenset({"image_vector"})
    indices = frozenset({"image"})

    def recommend(self, query: Query, gallery: Gallery, k: int) -> list[Hit]:
        query.need("image_vector")
        return [Hit(artwork, 0.0) for artwork in gallery.artworks[::-1][:k]]


async def test_a_registered_recommender_is_listed_and_served(
    api: httpx.AsyncClient, tiny_gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REGISTRY, "newest", Newest())
    listed = (await api.get("/v1/recommenders", headers=AUTH)).json()["recommenders"]
    assert {"name": "newest", "needs": ["image"], "personal": False, "fast": True, "text": False} in listed
    response = await analyze(api, image_bytes(synthetic_artwork(84)), k=2, recommenders="newest,by_look")
    size = len(Gallery.load(tiny_gallery))
    assert ids(response.json()["recommendations"]["newest"]) == [size - 1, size - 2]
