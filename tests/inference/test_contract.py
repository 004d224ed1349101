"""The typed contract on the service side: /openapi.json documents every answer, and real answers parse into it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, SecretStr

from inference import contract
from inference.gallery_store import Gallery
from inference.schemas import MAX_EXCLUDE, MAX_FEEDBACK, SuggestRequest
from inference.settings import InferenceSettings
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH

ROUTES: list[tuple[str, str, type[BaseModel]]] = [
    ("post", "/v1/look", contract.LookResponse),
    ("post", "/v1/analyze", contract.AnalyzeResponse),
    ("get", "/v1/recommenders", contract.RecommendersResponse),
    ("post", "/v1/suggest", contract.SuggestResponse),
    ("post", "/v1/onboarding", contract.OnboardingResponse),
    ("get", "/v1/artworks/{artwork_id}", contract.Artwork),
    ("get", "/healthz", contract.HealthResponse),
]


@pytest.mark.parametrize(("method", "path", "model"), ROUTES, ids=[path for _, path, _ in ROUTES])
async def test_openapi_declares_the_contract_model_of_every_json_route(
    api: httpx.AsyncClient, method: str, path: str, model: type[BaseModel]
) -> None:
    spec = (await api.get("/openapi.json")).json()
    schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}
    assert model.__name__ in spec["components"]["schemas"]


async def test_a_real_analyze_answer_parses_into_the_contract(api: httpx.AsyncClient, tiny_gallery: Path) -> None:
    liked = [0, 1]
    response = await api.post(
        "/v1/analyze",
        params={"k": 3},
        data={
            "recommenders": "by_look,by_meaning,for_you",
            "feedback": json.dumps([{"artwork_id": i, "value": 1.0} for i in liked]),
        },
        files={"image": ("p.jpg", image_bytes(synthetic_artwork(31)), "image/jpeg")},
        headers=AUTH,
    )
    assert response.status_code == 200, response.text
    parsed = contract.AnalyzeResponse.model_validate(response.json())
    assert parsed.description
    assert set(parsed.recommendations) == {"by_look", "by_meaning", "for_you"}
    assert all(hit.because in liked for hit in parsed.recommendations["for_you"])
    gallery = Gallery.load(tiny_gallery)
    first = parsed.recommendations["by_look"][0]
    assert first.title == gallery.artworks[first.artwork_id].title
    # The body keeps the fields it always had: no `because` on sets that are not personal.
    assert all("because" not in hit for hit in response.json()["recommendations"]["by_look"])


async def test_every_other_answer_parses_into_the_contract(api: httpx.AsyncClient) -> None:
    photo = {"image": ("p.jpg", image_bytes(synthetic_artwork(32)), "image/jpeg")}
    look = await api.post("/v1/look", files=photo, headers=AUTH)
    assert contract.LookResponse.model_validate(look.json()).recommendations["by_look"]
    listed = contract.RecommendersResponse.model_validate((await api.get("/v1/recommenders", headers=AUTH)).json())
    assert {"by_look", "for_you"} <= {info.name for info in listed.recommenders}
    suggest = await api.post("/v1/suggest", json={"feedback": [{"artwork_id": 2, "value": 1}]}, headers=AUTH)
    assert contract.SuggestResponse.model_validate(suggest.json()).profile.likes == 1
    onboarding = await api.post("/v1/onboarding", json={"k": 3}, headers=AUTH)
    assert len(contract.OnboardingResponse.model_validate(onboarding.json()).artworks) == 3
    artwork = contract.Artwork.model_validate((await api.get("/v1/artworks/1", headers=AUTH)).json())
    assert artwork.artwork_id == artwork.id == 1
    health = contract.HealthResponse.model_validate((await api.get("/healthz")).json())
    assert health.status == "ok" and set(health.dropped) == {"clip", "describe", "clip_text"}


def test_the_largest_valid_taste_body_fits_the_default_json_cap(tmp_path: Path) -> None:
    """2000 events with long floats and 20000 large ids: the cap refuses abuse, never a real user."""
    body = SuggestRequest.model_validate(
        {
            "feedback": [
                {"artwork_id": 9_999_999, "value": -0.30000000000000004, "age_days": 1234.5678901234567}
                for _ in range(MAX_FEEDBACK)
            ],
            "exclude": [9_999_999] * MAX_EXCLUDE,
            "k": 20,
            "exploration": 0.30000000000000004,
            "seed": 2**63 - 1,
        }
    )
    size = len(body.model_dump_json(indent=1).encode())
    cap = InferenceSettings(token=SecretStr("t"), gallery_dir=tmp_path).max_json_bytes
    assert size < cap / 2, size
