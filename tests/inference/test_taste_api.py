"""/v1/suggest and /v1/onboarding: works from feedback alone, and a spread of works for new users."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from inference.gallery_store import Gallery
from tests.inference.conftest import AUTH

LIKED = (1, 2, 8)
FEEDBACK = [{"artwork_id": i, "value": 1.0, "age_days": 2.0} for i in LIKED] + [{"artwork_id": 4, "value": -1.0}]


@pytest.fixture(scope="module")
def size(tiny_gallery: Path) -> int:
    return len(Gallery.load(tiny_gallery))


async def suggest(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post("/v1/suggest", json=body, headers=AUTH)


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [int(item["artwork_id"]) for item in items]


# --- suggest ---


async def test_suggest_skips_excluded_and_already_rated_works(api: httpx.AsyncClient, tiny_gallery: Path) -> None:
    gallery = Gallery.load(tiny_gallery)
    response = await suggest(api, feedback=FEEDBACK, exclude=[0, 3, 5], k=6, seed=7)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["profile"]["likes"] == len(LIKED)
    assert body["profile"]["interests"] >= 1
    suggestions = body["suggestions"]
    assert len(suggestions) == 6
    assert len(set(ids(suggestions))) == 6
    assert not set(ids(suggestions)) & {0, 3, 5, 4, *LIKED}
    for item in suggestions:
        assert {"artwork_id", "score", "title", "artist", "because", "explored"} <= item.keys()
        assert item["title"] == gallery.artworks[item["artwork_id"]].title
        if item["explored"]:
            assert item["because"] is None
        else:
            liked = gallery.artworks[item["because"]["artwork_id"]]
            assert item["because"] == {"artwork_id": liked.id, "title": liked.title, "artist": liked.artist}
            assert liked.id in LIKED


async def test_without_exploration_every_suggestion_says_because(api: httpx.AsyncClient) -> None:
    body = (await suggest(api, feedback=FEEDBACK, k=5, exploration=0.0, seed=1)).json()
    assert len(body["suggestions"]) == 5
    assert all(not item["explored"] and item["because"]["artwork_id"] in LIKED for item in body["suggestions"])


async def test_suggest_with_a_seed_is_repeatable(api: httpx.AsyncClient) -> None:
    first = await suggest(api, feedback=FEEDBACK, k=5, exploration=0.5, seed=3)
    second = await suggest(api, feedback=FEEDBACK, k=5, exploration=0.5, seed=3)
    assert first.json() == second.json()


async def test_suggest_for_a_new_user_is_a_diverse_sample(api: httpx.AsyncClient) -> None:
    body = (await suggest(api, k=4, seed=2)).json()
    assert body["profile"] == {"interests": 0, "likes": 0}
    assert len(set(ids(body["suggestions"]))) == 4
    assert all(item["because"] is None for item in body["suggestions"])


async def test_suggest_gives_what_is_left_and_nothing_when_all_is_excluded(api: httpx.AsyncClient, size: int) -> None:
    seen = {4, *LIKED}
    left = [i for i in range(size) if i not in seen][:2]
    exclude = [i for i in range(size) if i not in seen and i not in left]
    body = (await suggest(api, feedback=FEEDBACK, exclude=exclude, k=5)).json()
    assert sorted(ids(body["suggestions"])) == sorted(left)
    for everything in ([*exclude, *left], list(range(size))):
        response = await suggest(api, feedback=FEEDBACK, exclude=everything, k=5)
        assert response.status_code == 200
        assert response.json()["suggestions"] == []


async def test_suggest_defaults_k_to_top_k_and_ignores_unknown_ids(api: httpx.AsyncClient) -> None:
    body = (await suggest(api, feedback=[*FEEDBACK, {"artwork_id": 99999, "value": 1.0}], exclude=[99999])).json()
    assert len(body["suggestions"]) == 4  # top_k of make_settings
    assert body["profile"]["likes"] == len(LIKED)


@pytest.mark.parametrize(
    "body",
    [
        {"k": 0},
        {"k": 21},
        {"k": "many"},
        {"exclude": list(range(20001))},
        {"exclude": [-1]},
        {"exploration": 1.5},
        {"seed": -3},
        {"feedback": [{"artwork_id": 1}]},
        {"feedback": [{"artwork_id": 1, "value": "like"}]},
        {"feedback": [{"artwork_id": 1, "value": 2.0}]},
        {"feedback": [{"artwork_id": 1, "value": 1.0}] * 2001},
        {"feedback": {"artwork_id": 1, "value": 1.0}},
    ],
    ids=lambda body: next(iter(body)) + ":" + str(body[next(iter(body))])[:20],
)
async def test_bad_suggest_requests_get_a_json_422(api: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await suggest(api, **body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


async def test_non_json_bodies_get_a_json_422_and_strangers_a_401(api: httpx.AsyncClient) -> None:
    for path in ("/v1/suggest", "/v1/onboarding"):
        response = await api.post(path, content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
        assert (await api.post(path, json={"k": 3})).status_code == 401


# --- onboarding ---


async def test_onboarding_gives_k_distinct_works_spread_over_the_gallery(api: httpx.AsyncClient, size: int) -> None:
    response = await api.post("/v1/onboarding", json={"k": 6, "exclude": [0, 1], "seed": 5}, headers=AUTH)
    assert response.status_code == 200, response.text
    artworks = response.json()["artworks"]
    assert len(artworks) == 6
    assert len(set(ids(artworks))) == 6
    assert not set(ids(artworks)) & {0, 1}
    assert all({"artwork_id", "title", "artist", "year", "style", "genre", "file"} <= a.keys() for a in artworks)
    again = await api.post("/v1/onboarding", json={"k": 6, "exclude": [0, 1], "seed": 5}, headers=AUTH)
    assert again.json() == response.json()


async def test_onboarding_defaults_and_limits(api: httpx.AsyncClient, size: int) -> None:
    assert len((await api.post("/v1/onboarding", json={}, headers=AUTH)).json()["artworks"]) == 4
    everything = await api.post("/v1/onboarding", json={"k": 3, "exclude": list(range(size))}, headers=AUTH)
    assert everything.json() == {"artworks": []}
    for body in ({"k": 0}, {"k": 21}, {"exclude": list(range(20001))}):
        response = await api.post("/v1/onboarding", json=body, headers=AUTH)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"
