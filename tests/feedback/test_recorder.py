"""Votes and likes survive a database outage, and ownership is checked even while Postgres is away."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from feedback.recorder import FeedbackRecorder, Outcome, ShownAnalysis
from inference.contract import Side
from storage.cache import AnalysisCache, FeedbackOutbox, ShownAnalysisRegistry
from storage.db import unit_of_work
from storage.repositories import ArtworkRecord, Repo, ShownSet


def make_recorder(
    pool: asyncpg.Pool,
    outbox: FeedbackOutbox,
    shown: ShownAnalysisRegistry,
    suggested: ShownAnalysisRegistry | None = None,
) -> FeedbackRecorder:
    """The recorder over `pool` (live or dead) and the Redis parts; suggestions get their own namespace."""
    redis, prefix = shown._redis, shown._prefix  # noqa: SLF001 - same Redis and prefix as the test's registry
    suggested = suggested or ShownAnalysisRegistry(redis, 3600, prefix=prefix, namespace="suggested")
    analyses = AnalysisCache(redis, 3600, prefix=prefix)
    return FeedbackRecorder(functools.partial(unit_of_work, pool), outbox, shown, suggested, analyses)


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    """A pool whose Postgres is 'restarting': nothing listens on its port."""
    pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0, max_size=2)
    yield pool
    await pool.close()


async def shown_analysis(pool: asyncpg.Pool, user: int) -> ShownAnalysis:
    sets: dict[Side, list[int]] = {"left": [1, 2, 3], "right": [4, 5, 6]}
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user, "en")
        await repo.artworks.upsert_many(
            [ArtworkRecord(i, f"Work {i}", "Painter", "1900", "", "", "") for i in range(1, 7)]
        )
        analysis_id = await repo.analyses.create(
            user_id=user,
            image_sha256="0" * 64,
            description="a test",
            model_versions={},
            latency_ms=1,
            from_cache=False,
            sets=[ShownSet("by_look", "left", sets["left"]), ShownSet("by_meaning", "right", sets["right"])],
        )
    return ShownAnalysis(analysis_id, user, sets)


@pytest.fixture
def parts(redis: Redis, key_prefix: str) -> tuple[FeedbackOutbox, ShownAnalysisRegistry]:
    return FeedbackOutbox(redis, prefix=key_prefix), ShownAnalysisRegistry(redis, 3600, prefix=key_prefix)


async def test_vote_and_like_during_an_outage_are_written_when_postgres_is_back(
    pool: asyncpg.Pool, dead_pool: asyncpg.Pool, parts: Any, new_id: Any
) -> None:
    outbox, shown_registry = parts
    user = new_id()
    shown = await shown_analysis(pool, user)
    online = make_recorder(pool, outbox, shown_registry)
    await online.remember_shown(shown)

    during_outage = make_recorder(dead_pool, outbox, shown_registry)
    assert await during_outage.vote(user, shown.analysis_id, "right") is Outcome.QUEUED
    assert await during_outage.like(user, shown.analysis_id, 5, 1) is Outcome.QUEUED
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM votes WHERE user_id = $1", user) == 0

    assert await during_outage.flush_outbox() == 0  # still down: nothing lost, nothing written
    assert await online.flush_outbox() == 2
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT choice FROM votes WHERE user_id = $1", user) == "right"
        assert await conn.fetchval("SELECT value FROM likes WHERE user_id = $1 AND artwork_id = 5", user) == 1


async def test_ownership_is_checked_during_an_outage(
    pool: asyncpg.Pool, dead_pool: asyncpg.Pool, parts: Any, new_id: Any
) -> None:
    outbox, shown_registry = parts
    owner, stranger = new_id(), new_id()
    shown = await shown_analysis(pool, owner)
    await make_recorder(pool, outbox, shown_registry).remember_shown(shown)
    during_outage = make_recorder(dead_pool, outbox, shown_registry)

    assert await during_outage.vote(stranger, shown.analysis_id, "left") is Outcome.REFUSED
    assert await during_outage.like(owner, shown.analysis_id, 99, 1) is Outcome.REFUSED  # not in its sets
    forged = "sideways"  # not a VoteChoice: a forged button's payload
    assert await during_outage.vote(owner, shown.analysis_id, forged) is Outcome.REFUSED  # type: ignore[arg-type]
    assert await outbox.size() == 0


async def test_ownership_falls_back_to_postgres_when_redis_forgot(
    pool: asyncpg.Pool, parts: Any, new_id: Any
) -> None:
    outbox, shown_registry = parts
    owner, stranger = new_id(), new_id()
    shown = await shown_analysis(pool, owner)  # never remembered in Redis (e.g. expired)
    recorder = make_recorder(pool, outbox, shown_registry)
    assert await recorder.vote(stranger, shown.analysis_id, "left") is Outcome.REFUSED
    assert await recorder.vote(owner, shown.analysis_id, "left") is Outcome.SAVED
    assert await recorder.vote(owner, shown.analysis_id, "left") is Outcome.UNCHANGED
    assert await recorder.like(owner, shown.analysis_id, 2, -1) is Outcome.SAVED
    assert await recorder.current_likes(owner, shown.artwork_ids) == {2: -1}


async def test_likes_on_a_suggestion_are_checked_and_survive_an_outage(
    pool: asyncpg.Pool, dead_pool: asyncpg.Pool, redis: Redis, key_prefix: str, new_id: Any
) -> None:
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    shown = ShownAnalysisRegistry(redis, 3600, prefix=key_prefix)
    suggested = ShownAnalysisRegistry(redis, 3600, prefix=key_prefix, namespace="suggested")
    owner, stranger = new_id(), new_id()
    await shown_analysis(pool, owner)  # creates works 1..6
    async with pool.acquire() as conn:
        await Repo(conn).users.touch(stranger, "en")
        suggestion_id = await Repo(conn).suggestions.create(owner, "foryou", [2, 4])
    online = make_recorder(pool, outbox, shown, suggested)
    await online.remember_suggestion(suggestion_id, owner, [2, 4])
    during_outage = make_recorder(dead_pool, outbox, shown, suggested)

    assert await during_outage.like_suggestion(stranger, suggestion_id, 2, 1) is Outcome.REFUSED
    assert await during_outage.like_suggestion(owner, suggestion_id, 3, 1) is Outcome.REFUSED  # not suggested
    assert await during_outage.like_suggestion(owner, suggestion_id, 4, 1) is Outcome.QUEUED
    assert await online.flush_outbox() == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT value, suggestion_id FROM likes WHERE user_id = $1", owner)
    assert row is not None and (row["value"], row["suggestion_id"]) == (1, suggestion_id)
    # Redis forgot it: Postgres still knows whose it is
    await suggested.forget([suggestion_id])
    assert await online.like_suggestion(owner, suggestion_id, 2, -1) is Outcome.SAVED
    assert await online.like_suggestion(stranger, suggestion_id, 2, -1) is Outcome.REFUSED


async def test_an_interleaved_set_takes_likes_but_no_vote(pool: asyncpg.Pool, parts: Any, new_id: Any) -> None:
    outbox, shown_registry = parts
    user = new_id()
    shown = await shown_analysis(pool, user)
    interleaved = ShownAnalysis(shown.analysis_id, user, shown.sets, mode="interleaved")
    recorder = make_recorder(pool, outbox, shown_registry)
    await recorder.remember_shown(interleaved)
    assert await recorder.vote(user, shown.analysis_id, "left") is Outcome.REFUSED
    assert await recorder.like(user, shown.analysis_id, 1, 1) is Outcome.SAVED


async def test_forget_deletes_the_users_rows_queue_and_buttons(
    pool: asyncpg.Pool, dead_pool: asyncpg.Pool, parts: Any, new_id: Any
) -> None:
    outbox, shown_registry = parts
    user, other = new_id(), new_id()
    shown = await shown_analysis(pool, user)
    others = await shown_analysis(pool, other)
    recorder = make_recorder(pool, outbox, shown_registry)
    for analysis in (shown, others):
        await recorder.remember_shown(analysis)
    assert await recorder.like(user, shown.analysis_id, 1, 1) is Outcome.SAVED
    during_outage = make_recorder(dead_pool, outbox, shown_registry)
    assert await during_outage.vote(user, shown.analysis_id, "left") is Outcome.QUEUED
    assert await during_outage.vote(other, others.analysis_id, "right") is Outcome.QUEUED

    with pytest.raises(OSError):  # database down: nothing is deleted, and the user is told to retry
        await during_outage.forget(user)
    assert await outbox.size() == 2

    forgotten = await recorder.forget(user)
    assert forgotten is not None and (forgotten.analyses, forgotten.likes) == (1, 1)
    assert await outbox.size() == 1  # only the other user's vote is left to replay
    assert await recorder.vote(user, shown.analysis_id, "left") is Outcome.REFUSED  # old buttons are dead
    assert await recorder.flush_outbox() == 1
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM analyses WHERE user_id = $1", user) == 0
        assert await conn.fetchval("SELECT choice FROM votes WHERE user_id = $1", other) == "right"
