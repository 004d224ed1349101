"""Redis helpers: analysis cache, rate limiter and the shown-analysis registry, against a real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from storage.cache import AnalysisCache, RateLimiter, ShownAnalysisRegistry

ANALYSIS = {
    "description": "Звёздная ночь: swirling night sky over a village",
    "models": {"clip": "ViT-B-32"},
    "sets": {"by_look": [{"artwork_id": 3, "score": 0.91}], "by_meaning": []},
}


@pytest.fixture(params=[False, True], ids=["bytes", "decoded"])
async def any_redis(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Redis]:
    """The classes must work whether or not the caller's client decodes responses."""
    client = Redis.from_url(redis_url, decode_responses=request.param)
    try:
        yield client
    finally:
        await client.aclose()


async def test_analysis_cache_round_trip_with_ttl(any_redis: Redis, key_prefix: str) -> None:
    cache = AnalysisCache(any_redis, ttl_seconds=600, prefix=key_prefix)
    sha = "0f" * 32
    assert await cache.get(sha) is None
    await cache.put(sha, ANALYSIS)
    assert await cache.get(sha) == ANALYSIS
    key = f"{key_prefix}:analysis:{sha}"
    assert 590 <= await any_redis.ttl(key) <= 600
    stored = await any_redis.get(key)
    assert stored is not None and json.loads(stored) == ANALYSIS  # stored as plain JSON, never pickle


async def test_analysis_cache_drops_unreadable_entries(redis: Redis, key_prefix: str) -> None:
    cache = AnalysisCache(redis, ttl_seconds=60, prefix=key_prefix)
    key = f"{key_prefix}:analysis:bad"
    await redis.set(key, b"\x80\x04not json", ex=60)
    assert await cache.get("bad") is None
    assert await redis.exists(key) == 0


async def test_analysis_cache_refuses_what_json_cannot_hold(redis: Redis, key_prefix: str) -> None:
    with pytest.raises(TypeError):
        await AnalysisCache(redis, ttl_seconds=60, prefix=key_prefix).put("x", {"obj": object()})


async def test_rate_limiter_allows_limit_then_refuses(any_redis: Redis, key_prefix: str) -> None:
    limiter = RateLimiter(any_redis, limit=3, window_seconds=60, prefix=key_prefix)
    decisions = [await limiter.hit(42) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, False, False]
    assert all(d.retry_after == 0 for d in decisions[:3])
    assert all(0 < d.retry_after <= 60 for d in decisions[3:])
    assert (await limiter.hit(43)).allowed  # other users are unaffected
    assert (await limiter.hit(42, "vote")).allowed  # and so are other actions


async def test_rate_limiter_window_resets(redis: Redis, key_prefix: str) -> None:
    limiter = RateLimiter(redis, limit=1, window_seconds=60, prefix=key_prefix)
    assert (await limiter.hit(7)).allowed
    assert not (await limiter.hit(7)).allowed
    await redis.delete(f"{key_prefix}:rate:photo:7")  # what expiry does at the end of the window
    assert (await limiter.hit(7)).allowed


async def test_shown_registry_round_trip(any_redis: Redis, key_prefix: str) -> None:
    registry = ShownAnalysisRegistry(any_redis, ttl_seconds=3600, prefix=key_prefix)
    assert await registry.get(5) is None
    await registry.remember(5, 1001, {"left": [3, 1, 2], "right": (9, 8)})
    ttl = await any_redis.ttl(f"{key_prefix}:shown:5")
    assert await registry.get(5) == {
        "analysis_id": 5,
        "user_id": 1001,
        "sets": {"left": [3, 1, 2], "right": [9, 8]},
        "mode": "sides",
    }
    await registry.forget([5])
    assert await registry.get(5) is None
    assert 3590 <= ttl <= 3600
    await any_redis.set(f"{key_prefix}:shown:6", "[1, 2]")
    assert await registry.get(6) is None  # unexpected shape: treated as unknown


def test_constructors_refuse_nonsense(redis: Redis) -> None:
    with pytest.raises(ValueError):
        AnalysisCache(redis, ttl_seconds=0)
    with pytest.raises(ValueError):
        RateLimiter(redis, limit=0, window_seconds=60)
    with pytest.raises(ValueError):
        ShownAnalysisRegistry(redis, ttl_seconds=-1)
