"""Redis that heals: one client rides out a Redis restart, and while Redis is away the optimisations step aside
quickly (the outbox alone raises, because a vote answered "queued" must really be queued)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis.backoff import ExponentialBackoff

from feedback.arena import VoteTable, fit
from feedback.leaderboard import LeaderboardCache
from storage.cache import (
    REDIS_DOWN,
    AnalysisCache,
    FeedbackOutbox,
    RateDecision,
    RateLimiter,
    ShownAnalysisRegistry,
    availability,
    create_redis,
)
from storage.cache.connection import BACKOFF_BASE_S, BACKOFF_CAP_S, retries_for
from tests.private_services import PrivateRedis

SMALL_BUDGET_S = 0.1  # the retries of a client that gives up fast, so these tests stay fast


async def _fill_pool(client: Redis, connections: int = 8) -> None:
    """Several pooled connections at once, all of which a restart will leave dead."""
    await asyncio.gather(*(client.blpop([f"absent:{n}"], timeout=0.05) for n in range(connections)))


async def test_one_client_keeps_working_across_a_kill_and_restart(private_redis: PrivateRedis) -> None:
    client = create_redis(private_redis.url)
    try:
        await client.set("before", "1")
        await _fill_pool(client)

        private_redis.kill()
        private_redis.restart()

        results = await asyncio.gather(*(client.incr(f"after:{n}") for n in range(16)))
        assert results == [1] * 16
        assert await client.get("before") == b"1"  # the shipped AOF settings kept the write
    finally:
        await client.aclose()


async def test_a_command_sent_while_redis_restarts_waits_for_it(private_redis: PrivateRedis) -> None:
    client = create_redis(private_redis.url)
    try:
        await _fill_pool(client)
        private_redis.kill()
        sent = asyncio.ensure_future(client.rpush("queue", "vote"))
        await asyncio.sleep(1.0)  # Redis is away for a moment, as during a container restart
        assert not sent.done()
        await asyncio.to_thread(private_redis.restart)
        assert await asyncio.wait_for(sent, timeout=5) == 1
    finally:
        await client.aclose()


async def test_while_redis_is_away_the_caches_step_aside_and_the_outbox_raises(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    client = create_redis(private_redis.url, retry_budget_s=SMALL_BUDGET_S)
    try:
        await client.ping()  # a pooled connection that the kill leaves dead
        private_redis.kill()
        analyses = AnalysisCache(client, ttl_seconds=60)
        limiter = RateLimiter(client, limit=1, window_seconds=60)
        shown = ShownAnalysisRegistry(client, ttl_seconds=60)
        leaderboard = LeaderboardCache(client)
        board = fit(VoteTable.from_rows([], ["by_look", "fused"]), bootstrap=10)
        optional_calls: dict[str, tuple[Callable[[], Awaitable[object]], object]] = {
            "AnalysisCache.get": (lambda: analyses.get("ab" * 32), None),
            "AnalysisCache.put": (lambda: analyses.put("ab" * 32, {"genre": "still life"}), None),
            "AnalysisCache.forget": (lambda: analyses.forget(["ab" * 32]), None),
            "RateLimiter.hit": (lambda: limiter.hit(7), RateDecision(allowed=True, retry_after=0)),
            "ShownAnalysisRegistry.get": (lambda: shown.get(11), None),
            "ShownAnalysisRegistry.remember": (lambda: shown.remember(11, 7, {"left": [1], "right": [2]}), None),
            "ShownAnalysisRegistry.forget": (lambda: shown.forget([11]), None),
            "LeaderboardCache.get": (leaderboard.get, None),
            "LeaderboardCache.put": (lambda: leaderboard.put(board), None),
        }
        caplog.set_level(logging.WARNING, logger="storage.cache.availability")
        for index, (name, (call, fallback)) in enumerate(optional_calls.items()):
            started = time.monotonic()
            assert await call() == fallback, name
            # the first call waits out the retry budget; the others know Redis is away and skip it at once
            limit = SMALL_BUDGET_S + 1.0 if index == 0 else 0.1
            assert time.monotonic() - started < limit, name
        warnings = [r.getMessage() for r in caplog.records]
        assert warnings == ["Redis unavailable (ConnectionError); AnalysisCache.get skipped"]  # one line, no trace
        assert all(r.exc_info is None for r in caplog.records)

        started = time.monotonic()
        with pytest.raises(REDIS_DOWN):
            await FeedbackOutbox(client).push({"kind": "vote", "user_id": 7, "analysis_id": 11, "choice": "left"})
        assert time.monotonic() - started < SMALL_BUDGET_S + 1.0
    finally:
        await client.aclose()


async def test_errors_other_than_redis_being_away_still_raise(redis: Redis, key_prefix: str) -> None:
    cache = AnalysisCache(redis, ttl_seconds=60, prefix=key_prefix)
    with pytest.raises(TypeError):
        await cache.put("cd" * 32, {"not json": object()})


def test_the_default_retry_budget_rides_out_a_restart_of_a_few_seconds() -> None:
    backoff = ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)
    slept = sum(backoff.compute(n) for n in range(1, retries_for(6.0, backoff) + 1))
    assert 5.0 <= slept <= 8.0


async def test_once_redis_is_back_the_caches_use_it_again(
    private_redis: PrivateRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The "away" mark is short: after a restart the optional calls reach Redis again by themselves."""
    monkeypatch.setattr(availability, "AWAY_S", 0.3)
    client = create_redis(private_redis.url, retry_budget_s=SMALL_BUDGET_S)
    try:
        limiter = RateLimiter(client, limit=1, window_seconds=60)
        private_redis.kill()
        assert (await limiter.hit(7)).allowed  # away: allowed without counting
        private_redis.restart()
        await asyncio.sleep(0.4)
        assert (await limiter.hit(7)).allowed
        assert not (await limiter.hit(7)).allowed  # counted again: Redis is in use
    finally:
        await client.aclose()
