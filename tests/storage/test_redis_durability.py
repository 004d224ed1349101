"""Votes queued in the outbox survive a Redis crash when Redis runs as shipped (AOF, fsync on every write), and
the bot can tell at start whether it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage.cache import FeedbackOutbox, create_redis, redis_persistence
from tests.private_services import PrivateRedis


def _vote(n: int) -> dict[str, Any]:
    return {"kind": "vote", "user_id": 1, "analysis_id": n, "choice": "left"}


async def test_queued_votes_survive_a_redis_crash_in_order(private_redis: PrivateRedis) -> None:
    client = create_redis(private_redis.url)
    try:
        outbox = FeedbackOutbox(client)
        for n in range(60):
            await outbox.push(_vote(n))

        private_redis.kill()  # no shutdown, no final fsync
        private_redis.restart()

        assert await outbox.size() == 60
        delivered: list[int] = []

        async def database_up(event: dict[str, Any]) -> None:
            delivered.append(event["analysis_id"])

        assert await outbox.drain(database_up) == 60
        assert delivered == list(range(60))
        assert await outbox.size() == 0
    finally:
        await client.aclose()


async def test_the_shipped_settings_are_reported_durable(private_redis: PrivateRedis) -> None:
    client = create_redis(private_redis.url)
    try:
        report = await redis_persistence(client)
    finally:
        await client.aclose()
    assert report.durable is True
    assert (report.appendonly, report.appendfsync) == ("yes", "always")


async def test_redis_without_persistence_is_reported_with_the_fix(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path, durable=False) as server:
        client = create_redis(server.url, decode_responses=True)
        try:
            report = await redis_persistence(client)
        finally:
            await client.aclose()
    assert report.durable is False
    assert "appendonly=no" in report.message
    assert "--appendonly yes --appendfsync always" in report.message


async def test_fsync_once_a_second_is_not_durable_enough(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path, extra_args=["--appendfsync", "everysec"]) as server:
        client = create_redis(server.url)
        try:
            report = await redis_persistence(client)
        finally:
            await client.aclose()
    assert report.durable is False
    assert "appendfsync=everysec" in report.message


async def test_a_redis_that_hides_config_is_reported_as_unknown(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path, extra_args=["--rename-command", "CONFIG", ""]) as server:
        client = create_redis(server.url)
        try:
            report = await redis_persistence(client)
        finally:
            await client.aclose()
    assert report.durable is None
    assert "--appendonly yes --appendfsync always" in report.message
