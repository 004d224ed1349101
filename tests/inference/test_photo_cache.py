"""One decode per photo: the bot sends a photo to /v1/look and /v1/analyze at once, and the service decodes it
once (seen in GET /metrics), within bounded memory; and each model thread computes with its own share of cores."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
import torch
from PIL import Image

from inference.models import Models
from inference.photo_cache import PhotoCache
from inference.settings import InferenceSettings
from inference.threads import ThreadPlan
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH, serving
from tests.inference.test_api import _pipeline, upload
from tests.scrape import sample

DECODES = "artmatch_inference_photo_decodes_total"


async def decodes(client: httpx.AsyncClient) -> dict[str, float]:
    text = (await client.get("/metrics")).text
    return {outcome: sample(text, DECODES, outcome=outcome) or 0.0 for outcome in ("decoded", "reused")}


def grew(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {outcome: after[outcome] - before[outcome] for outcome in before}


async def test_a_photo_sent_to_look_and_analyze_at_once_is_decoded_once(api: httpx.AsyncClient) -> None:
    photo = upload(image_bytes(synthetic_artwork(301, (640, 480))))
    before = await decodes(api)

    look, analysis = await asyncio.gather(
        api.post("/v1/look", files=photo, headers=AUTH),
        api.post("/v1/analyze", data={"recommenders": "by_look"}, files=photo, headers=AUTH),
    )

    assert look.status_code == analysis.status_code == 200
    assert look.json()["image_sha256"] == analysis.json()["image_sha256"]
    assert grew(before, await decodes(api)) == {"decoded": 1, "reused": 1}


async def test_a_photo_sent_again_moments_later_is_not_decoded_again_but_another_photo_is(
    api: httpx.AsyncClient,
) -> None:
    photo, other = (upload(image_bytes(synthetic_artwork(seed, (500, 400)))) for seed in (302, 303))
    before = await decodes(api)

    assert (await api.post("/v1/look", files=photo, headers=AUTH)).status_code == 200
    assert (await api.post("/v1/identify", files=photo, headers=AUTH)).status_code == 200
    assert (await api.post("/v1/look", files=other, headers=AUTH)).status_code == 200

    assert grew(before, await decodes(api)) == {"decoded": 2, "reused": 1}


async def test_with_the_cache_off_every_request_decodes(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    photo = upload(image_bytes(synthetic_artwork(304)))
    async with serving(make_settings(photo_cache_mb=0), tiny_models) as client:
        before = await decodes(client)
        for _ in range(2):
            assert (await client.post("/v1/look", files=photo, headers=AUTH)).status_code == 200
        assert grew(before, await decodes(client)) == {"decoded": 2, "reused": 0}


# --- the cache on its own ---------------------------------------------------------------------------------------


@dataclass
class Photo:
    image: Image.Image


def decoder(side: int, calls: list[str], delay: float = 0.0) -> Callable[[str], Callable[[], Awaitable[Photo]]]:
    """Decodes of a `side` x `side` RGB photo (3 bytes a pixel) that note their digest in `calls`."""

    def make(digest: str) -> Callable[[], Awaitable[Photo]]:
        async def decode() -> Photo:
            calls.append(digest)
            await asyncio.sleep(delay)
            return Photo(Image.new("RGB", (side, side)))

        return decode

    return make


async def test_the_cache_holds_at_most_its_budget_dropping_the_least_recently_used() -> None:
    calls: list[str] = []
    make = decoder(100, calls)  # 30 000 bytes each
    cache: PhotoCache[Photo] = PhotoCache(max_bytes=100_000, ttl_s=60)

    for digest in ("a", "b", "c"):
        await cache.get(digest, make(digest))
    await cache.get("a", make("a"))  # a is now the most recent
    await cache.get("d", make("d"))  # over budget: b, the least recently used, leaves

    assert cache.held_bytes <= 100_000 and len(cache) == 3
    await cache.get("b", make("b"))
    assert calls == ["a", "b", "c", "d", "b"]


async def test_a_photo_larger_than_the_budget_is_decoded_but_not_kept() -> None:
    calls: list[str] = []
    cache: PhotoCache[Photo] = PhotoCache(max_bytes=1000, ttl_s=60)

    for _ in range(2):
        await cache.get("big", decoder(100, calls)("big"))

    assert calls == ["big", "big"] and cache.held_bytes == 0 and len(cache) == 0


async def test_entries_leave_after_their_time() -> None:
    calls: list[str] = []
    cache: PhotoCache[Photo] = PhotoCache(max_bytes=1 << 20, ttl_s=0.05)

    await cache.get("a", decoder(10, calls)("a"))
    await cache.get("a", decoder(10, calls)("a"))
    await asyncio.sleep(0.1)
    await cache.get("a", decoder(10, calls)("a"))

    assert calls == ["a", "a"] and cache.reused == 1


async def test_a_failed_decode_is_not_kept() -> None:
    cache: PhotoCache[Photo] = PhotoCache(max_bytes=1 << 20, ttl_s=60)
    attempts = 0

    async def broken() -> Photo:
        nonlocal attempts
        attempts += 1
        raise ValueError("not an image")

    for _ in range(2):
        with pytest.raises(ValueError):
            await cache.get("x", broken)
    assert attempts == 2 and len(cache) == 0


async def test_a_caller_hanging_up_does_not_cancel_the_decode_another_waits_for() -> None:
    calls: list[str] = []
    make = decoder(10, calls, delay=0.05)
    cache: PhotoCache[Photo] = PhotoCache(max_bytes=1 << 20, ttl_s=60)

    first = asyncio.ensure_future(cache.get("a", make("a")))
    second = asyncio.ensure_future(cache.get("a", make("a")))
    await asyncio.sleep(0.01)
    first.cancel()

    assert (await second).image.size == (10, 10)
    assert calls == ["a"]


# --- threads ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cores", "clip", "describer"), [(1, 1, 1), (2, 1, 1), (4, 2, 2), (16, 8, 8), (64, 8, 56)])
def test_clip_gets_half_the_cores_and_the_describer_the_rest(cores: int, clip: int, describer: int) -> None:
    plan = ThreadPlan.split(cores=cores)
    assert (plan.clip, plan.describer, plan.identify) == (clip, describer, 1)


def test_the_settings_override_the_split() -> None:
    assert ThreadPlan.split(clip=3, describer=5, identify=2, cores=2) == ThreadPlan(2, 3, 5, 2)


async def test_each_model_thread_computes_with_its_own_share(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    import cv2

    settings = make_settings(clip_threads=1, describer_threads=2, identify_threads=1)
    async with serving(settings, tiny_models) as client:
        assert (
            await client.post("/v1/look", files=upload(image_bytes(synthetic_artwork(305))), headers=AUTH)
        ).is_success
        pipeline = _pipeline(client)
        on_clip = pipeline._clip_pool.submit(torch.get_num_threads).result()
        on_describer = pipeline._describe_pool.submit(torch.get_num_threads).result()

    assert (on_clip, on_describer) == (1, 2)
    assert cv2.getNumThreads() == 1
