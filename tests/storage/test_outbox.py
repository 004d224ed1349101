"""The feedback outbox: no vote or like is lost while Postgres is down, and order is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from storage.cache import FeedbackOutbox
from storage.repositories import Repo


def _vote(n: int) -> dict[str, Any]:
    return {"kind": "vote", "user_id": 1, "analysis_id": n, "choice": "left"}


async def test_event_survives_a_failing_handler_and_is_delivered_next_time(redis: Redis, key_prefix: str) -> None:
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    await outbox.push(_vote(1))
    assert await outbox.push(_vote(2)) == 2

    async def database_down(event: dict[str, Any]) -> None:
        raise ConnectionRefusedError("Postgres is restarting")

    with pytest.raises(ConnectionRefusedError):
        await outbox.drain(database_down)
    assert await outbox.size() == 2  # nothing lost, nothing dead-lettered
    assert await outbox.dead_letters() == []

    delivered: list[dict[str, Any]] = []

    async def database_up(event: dict[str, Any]) -> bool:
        delivered.append(event)
        return True

    assert await outbox.drain(database_up) == 2
    assert delivered == [_vote(1), _vote(2)]  # in the order they were pushed
    assert await outbox.size() == 0
    assert await outbox.drain(database_up) == 0


async def test_failure_midway_keeps_the_failed_event_and_everything_after_it(redis: Redis, key_prefix: str) -> None:
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    for n in range(1, 4):
        await outbox.push(_vote(n))
    seen: list[int] = []

    async def fails_on_second(event: dict[str, Any]) -> None:
        if event["analysis_id"] == 2:
            raise TimeoutError
        seen.append(event["analysis_id"])

    with pytest.raises(TimeoutError):
        await outbox.drain(fails_on_second)
    assert seen == [1]
    assert await outbox.size() == 2

    async def accepts(event: dict[str, Any]) -> None:
        seen.append(event["analysis_id"])

    assert await outbox.drain(accepts) == 2
    assert seen == [1, 2, 3]


async def test_permanent_failures_are_dead_lettered_not_blocking(redis: Redis, key_prefix: str) -> None:
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    await outbox.push(_vote(1))
    await redis.rpush(f"{key_prefix}:outbox:feedback", b"not json")
    await outbox.push({"kind": "vote"})  # missing fields: the handler raises KeyError
    await outbox.push(_vote(4))
    seen: list[int] = []

    async def handler(event: dict[str, Any]) -> None:
        seen.append(event["analysis_id"])

    assert await outbox.drain(handler) == 2
    assert seen == [1, 4]
    assert await outbox.size() == 0
    assert await outbox.dead_letters() == ["not json", {"kind": "vote"}]
    assert await outbox.requeue_dead_letters() == 2
    assert await outbox.size() == 2


async def test_only_one_drainer_at_a_time(redis: Redis, key_prefix: str) -> None:
    first, second = FeedbackOutbox(redis, prefix=key_prefix), FeedbackOutbox(redis, prefix=key_prefix)
    for n in range(3):
        await first.push(_vote(n))
    release = asyncio.Event()
    seen: list[int] = []

    async def slow(event: dict[str, Any]) -> None:
        await release.wait()
        seen.append(event["analysis_id"])

    draining = asyncio.create_task(first.drain(slow))
    await asyncio.sleep(0.05)
    assert await second.drain(slow) == 0  # the lock is held: it does not interleave
    release.set()
    assert await draining == 3
    assert seen == [0, 1, 2]


async def test_replays_into_postgres_and_dead_letters_feedback_of_deleted_users(
    redis: Redis, key_prefix: str, pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    """What the bot does after a database restart, with the real repositories as the handler."""
    stayed, left = new_id(), new_id()
    ids = {}
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        for user in (stayed, left):
            await repo.users.touch(user, "en")
            ids[user] = await repo.analyses.create(user, "ee" * 32, "d", {}, 5, False, [])
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    await outbox.push({"kind": "vote", "user_id": stayed, "analysis_id": ids[stayed], "choice": "left"})
    await outbox.push({"kind": "vote", "user_id": left, "analysis_id": ids[left], "choice": "right"})
    await outbox.push({"kind": "vote", "user_id": stayed, "analysis_id": ids[stayed], "choice": "both"})
    async with pool.acquire() as conn:
        assert await Repo(conn).users.delete(left)  # deleted while their vote waited in the outbox

    async def apply(event: dict[str, Any]) -> bool:
        async with pool.acquire() as conn, conn.transaction():
            return await Repo(conn).votes.upsert(event["user_id"], event["analysis_id"], event["choice"])

    assert await outbox.drain(apply) == 2
    async with pool.acquire() as conn:
        assert await Repo(conn).votes.get(stayed, ids[stayed]) == "both"
    assert [e["user_id"] for e in await outbox.dead_letters()] == [left]  # type: ignore[index]


async def test_drain_limit_and_a_decoding_client(redis_url: str, key_prefix: str) -> None:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        outbox = FeedbackOutbox(client, prefix=key_prefix)
        for n in range(3):
            await outbox.push(_vote(n))
        seen: list[int] = []

        async def handler(event: dict[str, Any]) -> None:
            seen.append(event["analysis_id"])

        assert await outbox.drain(handler, limit=2) == 2
        assert await outbox.size() == 1
        assert await outbox.drain(handler) == 1
        assert seen == [0, 1, 2]
    finally:
        await client.aclose()


async def test_discard_removes_one_users_events_and_keeps_the_order_of_the_rest(redis: Redis, key_prefix: str) -> None:
    outbox = FeedbackOutbox(redis, prefix=key_prefix)
    events = [
        {"kind": "vote", "user_id": user, "analysis_id": n, "choice": "left"} for n, user in enumerate([1, 2, 1, 3])
    ]
    for event in events:
        await outbox.push(event)

    async def refuse_first_then_go_down(event: dict[str, Any]) -> None:
        if event["analysis_id"] == 0:
            raise ValueError("a permanent failure: dead-lettered")
        raise ConnectionRefusedError("Postgres went away")

    with pytest.raises(ConnectionRefusedError):
        await outbox.drain(refuse_first_then_go_down)
    assert len(await outbox.dead_letters()) == 1 and await outbox.size() == 3
    assert await outbox.discard(lambda event: event["user_id"] == 1) == 2
    assert await outbox.dead_letters() == []
    delivered: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        delivered.append(event)

    await outbox.drain(record)
    assert delivered == [events[1], events[3]]
