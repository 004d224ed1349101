"""The private servers that fault tests kill and restart: they come back on the same port with their data."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
import redis

from tests.private_services import PrivatePostgres, PrivateRedis, free_port


def test_private_redis_restarts_on_its_port_and_cleans_up(tmp_path: Path) -> None:
    with PrivateRedis(tmp_path) as server:
        client = redis.Redis.from_url(server.url)
        client.set("kept", "yes")
        port = server.port
        server.kill()
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(server.url, retry=None).ping()
        server.restart()
        assert server.port == port
        assert client.get("kept") == b"yes"
        client.close()
        data = server.dir
    assert not data.exists()
    assert not server.running


async def test_private_postgres_recovers_committed_rows_after_a_kill(private_postgres: PrivatePostgres) -> None:
    conn = await asyncpg.connect(private_postgres.dsn)
    await conn.execute("CREATE TABLE votes (id int PRIMARY KEY)")
    await conn.execute("INSERT INTO votes VALUES (1), (2)")

    private_postgres.kill()
    with pytest.raises((OSError, asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT 1")
    private_postgres.restart()

    conn = await asyncpg.connect(private_postgres.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM votes") == 2
    finally:
        await conn.close()
    private_postgres.stop()
    assert not private_postgres.running


def test_private_postgres_removes_its_data_even_when_the_test_fails(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), PrivatePostgres(tmp_path) as server:
        base = server.base
        raise RuntimeError("a failing fault test")
    assert not base.exists()
    assert not server.running


def test_free_port_is_bindable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
