"""unit_of_work: one transaction per block, committed or rolled back whole, and a dead database fails fast."""

from __future__ import annotations

import time
from collections.abc import Callable

import asyncpg
import pytest

from storage.db import DATABASE_DOWN, TRANSIENT_CONNECT_ERRORS, unit_of_work
from storage.repositories import Repo


async def test_a_block_that_ends_normally_is_committed(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    user_id = new_id()
    async with unit_of_work(pool) as repo:
        assert isinstance(repo, Repo)
        assert repo.conn.is_in_transaction()
        await repo.users.touch(user_id, "en")
    async with pool.acquire() as conn:
        assert await Repo(conn).users.get(user_id) is not None


async def test_a_block_that_raises_writes_nothing(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    first, second = new_id(), new_id()
    with pytest.raises(RuntimeError, match="handler failed"):
        async with unit_of_work(pool) as repo:
            await repo.users.touch(first, "en")
            await repo.users.touch(second, "ru")
            raise RuntimeError("handler failed")
    async with pool.acquire() as conn:
        users = Repo(conn).users
        assert await users.get(first) is None
        assert await users.get(second) is None


async def test_a_dead_database_raises_database_down_at_once() -> None:
    dead = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0)
    try:
        started = time.monotonic()
        with pytest.raises(DATABASE_DOWN):
            async with unit_of_work(dead, timeout=2.0):
                pytest.fail("the block must not run without a database")
        assert time.monotonic() - started < 2.5
    finally:
        await dead.close()


async def test_a_saturated_pool_raises_database_down_after_the_acquire_timeout(pg_dsn: str) -> None:
    small = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    try:
        async with small.acquire():
            started = time.monotonic()
            with pytest.raises(DATABASE_DOWN):
                async with unit_of_work(small, timeout=0.2):
                    pytest.fail("the block must not run without a connection")
            assert time.monotonic() - started < 1.5
    finally:
        await small.close()


def test_database_down_extends_the_transient_connect_errors() -> None:
    assert set(TRANSIENT_CONNECT_ERRORS) <= set(DATABASE_DOWN)
    assert TimeoutError in DATABASE_DOWN  # the pool's acquire timeout
    assert asyncpg.exceptions.TooManyConnectionsError in DATABASE_DOWN
    assert asyncpg.exceptions.InterfaceError in DATABASE_DOWN
