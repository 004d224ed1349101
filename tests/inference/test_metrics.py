"""GET /metrics of the service: what a Prometheus scrape sees after real requests to the tiny service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from inference.models import Models
from inference.settings import InferenceSettings
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH, GatedDescriber, serving
from tests.inference.test_api import upload
from tests.scrape import families, sample


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")  # no token: Prometheus scrapes without one
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def count(text: str, name: str, **labels: str) -> float:
    return sample(text, name, **labels) or 0.0


async def test_a_look_feeds_the_stage_histograms_and_the_response_count(api: httpx.AsyncClient) -> None:
    before = await scrape(api)
    response = await api.post("/v1/look", files=upload(image_bytes(synthetic_artwork(7))), headers=AUTH)
    assert response.status_code == 200
    after = await scrape(api)

    look = {"route": "/v1/look"}
    for stage in ("decode", "clip", "search", "total"):
        name = "artmatch_inference_stage_seconds_count"
        assert count(after, name, **look, stage=stage) == count(before, name, **look, stage=stage) + 1, stage
    # the histogram holds seconds: the clip pass took what the answer says it took
    clip_s = response.json()["timings_ms"]["clip"] / 1000.0
    grew = count(after, "artmatch_inference_stage_seconds_sum", **look, stage="clip") - count(
        before, "artmatch_inference_stage_seconds_sum", **look, stage="clip"
    )
    assert abs(grew - clip_s) < 1e-3
    ok = {**look, "status": "200"}
    assert (
        count(after, "artmatch_inference_responses_total", **ok)
        == count(before, "artmatch_inference_responses_total", **ok) + 1
    )


async def test_refusals_are_counted_by_route_template_and_status(api: httpx.AsyncClient) -> None:
    photo = upload(image_bytes(synthetic_artwork(8)))
    before = await scrape(api)
    assert (await api.post("/v1/look", files=photo)).status_code == 401  # refused before routing
    assert (await api.post("/v1/look", params={"k": 0}, files=photo, headers=AUTH)).status_code == 422
    assert (await api.get("/v1/artworks/999999", headers=AUTH)).status_code == 404
    assert (await api.get("/wp-login.php", headers=AUTH)).status_code == 404
    after = await scrape(api)

    def grew(route: str, status: str) -> float:
        labels = {"route": route, "status": status}
        name = "artmatch_inference_responses_total"
        return count(after, name, **labels) - count(before, name, **labels)

    assert grew("/v1/look", "401") == 1
    assert grew("/v1/look", "422") == 1
    assert grew("/v1/artworks/{artwork_id}", "404") == 1  # the template, not one series per id
    assert grew("unmatched", "404") == 1
    assert "/wp-login.php" not in after


async def test_the_model_queues_are_exposed(api: httpx.AsyncClient) -> None:
    text = await scrape(api)
    assert {"artmatch_inference_queue_depth", "artmatch_inference_queue_computing"} <= families(text)
    for queue in ("clip", "describe", "clip_text"):
        assert sample(text, "artmatch_inference_queue_depth", queue=queue) == 0.0  # idle service: nothing waits


async def test_metrics_can_be_turned_off(make_settings: Callable[..., InferenceSettings], tiny_models: Models) -> None:
    async with serving(make_settings(metrics=False), tiny_models) as client:
        assert (await client.get("/metrics")).status_code == 401  # no longer public
        assert (await client.get("/metrics", headers=AUTH)).status_code == 404


async def test_a_busy_describer_shows_in_the_queue_gauges_and_its_503s_are_counted(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    describer = GatedDescriber(tiny_models.describer)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    settings = make_settings(max_queue=1, describe_batch_size=1, describe_batch_wait_ms=0)
    photo = upload(image_bytes(synthetic_artwork(9)))
    overloaded = {"route": "/v1/analyze", "status": "503"}
    async with serving(settings, models) as client:
        before = await scrape(client)
        try:
            first = asyncio.ensure_future(client.post("/v1/analyze", files=photo, headers=AUTH))
            await asyncio.to_thread(describer.entered.wait, 30)  # the first describe runs, and is stuck
            second = asyncio.ensure_future(client.post("/v1/analyze", files=photo, headers=AUTH))
            async with asyncio.timeout(30):  # until the second waits in the describe queue
                while sample(busy := await scrape(client), "artmatch_inference_queue_depth", queue="describe") != 1:
                    await asyncio.sleep(0.01)
            assert sample(busy, "artmatch_inference_queue_computing", queue="describe") == 1
            third = await client.post("/v1/analyze", files=photo, headers=AUTH)
            assert third.status_code == 503
        finally:
            describer.gate.set()
        assert (await first).status_code == (await second).status_code == 200
        after = await scrape(client)
    name = "artmatch_inference_responses_total"
    assert count(after, name, **overloaded) == count(before, name, **overloaded) + 1
    assert sample(after, "artmatch_inference_queue_depth", queue="describe") == 0
