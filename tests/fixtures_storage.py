"""Real Postgres and Redis, isolated per test run, so runs never see each other's data.

Postgres: each session creates its own schema (`artmatch_test_<hex>`) in the test database, and `pg_dsn`
carries `search_path=<schema>` as a DSN query parameter (asyncpg turns unknown DSN parameters into server
settings), so anything that connects with `pg_dsn` (a pool, the bot's start-up, `python -m storage migrate
--dsn`) works inside that schema. The schema is dropped at the end of the session.

Redis: `redis_prefix` is unique per run; classes under test get it (or a per-test `key_prefix` under it)
as their `prefix`, and keys under it are deleted at the end of the session.

The fixtures rely only on each other and on the environment, so they can move to tests/conftest.py as
they are. Override the servers with TEST_POSTGRES_DSN and TEST_REDIS_URL.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis

from storage.db import create_pool
from storage.migrate import migrate

DEFAULT_TEST_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with `search_path=<schema>` in its query string (replacing any search_path already there)."""
    parts = urlsplit(dsn)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"] + [("search_path", schema)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _create_schema(base_dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(base_dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()


async def _drop_schema(base_dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(base_dsn)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_base_dsn() -> str:
    return os.environ.get("TEST_POSTGRES_DSN", DEFAULT_TEST_POSTGRES_DSN)


@pytest.fixture(scope="session")
async def pg_dsn(pg_base_dsn: str) -> AsyncIterator[str]:
    """DSN of a fresh, empty schema for this test session (not migrated: the `pool` fixture does that)."""
    schema = f"artmatch_test_{uuid.uuid4().hex[:12]}"
    await _create_schema(pg_base_dsn, schema)
    try:
        yield with_search_path(pg_base_dsn, schema)
    finally:
        await _drop_schema(pg_base_dsn, schema)


@pytest.fixture
async def fresh_schema_dsn(pg_base_dsn: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of further empty schemas (dropped after the test), for tests that must start from nothing."""
    created: list[str] = []

    async def make() -> str:
        schema = f"artmatch_test_{uuid.uuid4().hex[:12]}"
        await _create_schema(pg_base_dsn, schema)
        created.append(schema)
        return with_search_path(pg_base_dsn, schema)

    try:
        yield make
    finally:
        for schema in created:
            await _drop_schema(pg_base_dsn, schema)


@pytest.fixture(scope="session")
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session schema, migrated to the latest version."""
    pool = await create_pool(pg_dsn, min_size=1, max_size=5, wait_seconds=10)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def new_id() -> Callable[[], int]:
    """Unique ids (users, artworks) so tests sharing the session schema never collide."""
    counter = itertools.count(random.randint(1_000_000, 1_000_000_000))
    return lambda: next(counter)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)


@pytest.fixture(scope="session")
def redis_prefix() -> str:
    """Key prefix unique to this run; pass it as `prefix=` to the cache classes."""
    return f"artmatch-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def redis(redis_url: str, redis_prefix: str) -> AsyncIterator[Redis]:
    """A client like the bot's (bytes replies); every key under `redis_prefix` is deleted afterwards."""
    client = Redis.from_url(redis_url)
    await client.ping()
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=f"{redis_prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def key_prefix(redis_prefix: str) -> Iterator[str]:
    """A prefix private to one test, under the run's prefix (so session clean-up removes it too)."""
    yield f"{redis_prefix}:{uuid.uuid4().hex[:8]}"
