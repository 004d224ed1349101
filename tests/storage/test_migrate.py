"""Migrations: idempotent, safe when two processes migrate at once, and runnable from the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from storage.migrate import load_migrations, migrate

EXPECTED_TABLES = {"users", "artworks", "analyses", "shown_sets", "votes", "likes", "schema_migrations"}
ROOT = Path(__file__).resolve().parents[2]


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    return {r["table_name"] for r in rows}


async def test_migrate_twice_applies_once(fresh_schema_dsn: Callable[[], Awaitable[str]]) -> None:
    conn = await asyncpg.connect(await fresh_schema_dsn())
    try:
        first = await migrate(conn)
        second = await migrate(conn)
        assert first == [m.name for m in load_migrations()]
        assert first[0] == "0001_init"
        assert second == []
        assert EXPECTED_TABLES <= await _tables(conn)
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == len(first)
    finally:
        await conn.close()


async def test_concurrent_migrations_apply_each_once(fresh_schema_dsn: Callable[[], Awaitable[str]]) -> None:
    dsn = await fresh_schema_dsn()
    conns = [await asyncpg.connect(dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        applied = [name for result in results for name in result]
        assert sorted(applied) == [
            m.name for m in load_migrations()
        ]  # each applied by exactly one connection
        assert EXPECTED_TABLES <= await _tables(conns[0])
    finally:
        for conn in conns:
            await conn.close()


async def test_migrate_accepts_a_pool(pool: asyncpg.Pool) -> None:
    assert await migrate(pool) == []  # the fixture already migrated it


def test_bad_migration_file_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_init.sql").write_text("SELECT 1;")
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="0001_name.sql"):
        load_migrations(tmp_path)
    (tmp_path / "init.sql").unlink()
    (tmp_path / "0001_again.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="two migrations"):
        load_migrations(tmp_path)


async def test_failed_migration_rolls_back_and_is_not_recorded(
    fresh_schema_dsn: Callable[[], Awaitable[str]], tmp_path: Path
) -> None:
    (tmp_path / "0001_good.sql").write_text("CREATE TABLE good (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    conn = await asyncpg.connect(await fresh_schema_dsn())
    try:
        with pytest.raises(asyncpg.exceptions.UndefinedFunctionError):
            await migrate(conn, directory=tmp_path)
        assert await conn.fetchval("SELECT array_agg(name) FROM schema_migrations") == ["0001_good"]
        assert "half" not in await _tables(conn)
        (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
        assert await migrate(conn, directory=tmp_path) == ["0002_bad"]
    finally:
        await conn.close()


async def test_command_line_migrate(fresh_schema_dsn: Callable[[], Awaitable[str]]) -> None:
    dsn = await fresh_schema_dsn()
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_POSTGRES_DSN", "BOT_POSTGRES_DSN")}

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "storage", "migrate", *args],
            cwd=ROOT,
            env={**env, **extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = await asyncio.to_thread(run, "--dsn", dsn)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_init" in first.stdout
    second = await asyncio.to_thread(run, BOT_POSTGRES_DSN=dsn)  # DSN from the environment
    assert second.returncode == 0, second.stderr
    assert "nothing applied" in second.stdout
    missing = await asyncio.to_thread(run)
    assert missing.returncode == 2
    assert "no DSN" in missing.stderr
