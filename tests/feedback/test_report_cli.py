"""`python -m feedback report` as people run it: a subprocess against a real, seeded database."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from storage.db import create_pool
from storage.migrate import migrate
from tests.feedback.test_leaderboard import seed_votes

REPO_ROOT = Path(__file__).resolve().parents[2]
DEAD_DSN = "postgresql://postgres:secret-password@127.0.0.1:1/artmatch"
DSN_ENV_VARS = ("FEEDBACK_POSTGRES_DSN", "BOT_POSTGRES_DSN")


async def report(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python -m feedback report ARGS`; inherited DSN variables are cleared."""
    environment = {k: v for k, v in os.environ.items() if k not in DSN_ENV_VARS} | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "feedback",
        "report",
        *args,
        cwd=REPO_ROOT,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def seeded_dsn(fresh_schema_dsn: Callable[[], Awaitable[str]], new_id: Callable[[], int]) -> str:
    """A migrated schema of its own where `champion` clearly beats `runner_up` and `underdog`."""
    dsn = await fresh_schema_dsn()
    pool = await create_pool(dsn, min_size=1, max_size=2, wait_seconds=10)
    try:
        await migrate(pool)
        await seed_votes(pool, new_id, "champion", "runner_up", ["left"] * 9 + ["both"])
        await seed_votes(pool, new_id, "runner_up", "champion", ["right"] * 9 + ["neither"])
        await seed_votes(pool, new_id, "champion", "underdog", ["left"] * 8)
        await seed_votes(pool, new_id, "runner_up", "underdog", ["left"] * 6 + ["right"] * 2)
    finally:
        await pool.close()
    return dsn


async def counts(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT count(*) FROM votes"), await conn.fetchval("SELECT count(*) FROM analyses")
    finally:
        await conn.close()


async def test_json_ranks_the_clear_winner_first_and_writes_nothing(seeded_dsn: str) -> None:
    before = await counts(seeded_dsn)
    code, out, err = await report("--dsn", seeded_dsn, "--json", "--bootstrap", "100", "--seed", "3")
    assert code == 0, err
    data = json.loads(out)
    names = [r["name"] for r in data["ratings"]]
    assert names == ["champion", "runner_up", "underdog"]
    assert data["total_votes"] == 36
    assert await counts(seeded_dsn) == before


async def test_same_seed_same_report(seeded_dsn: str) -> None:
    first = await report("--dsn", seeded_dsn, "--json", "--bootstrap", "50", "--seed", "7")
    second = await report("--dsn", seeded_dsn, "--json", "--bootstrap", "50", "--seed", "7")
    assert first[0] == 0 and first[1] == second[1]


async def test_table_and_chart(seeded_dsn: str, tmp_path: Path) -> None:
    chart = tmp_path / "arena.png"
    code, out, err = await report("--dsn", seeded_dsn, "--bootstrap", "50", "--chart", str(chart))
    assert code == 0, err
    assert "champion" in out and out.index("champion") < out.index("underdog")
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_dsn_comes_from_the_environment(seeded_dsn: str) -> None:
    code, out, err = await report("--json", "--bootstrap", "0", env={"BOT_POSTGRES_DSN": seeded_dsn})
    assert code == 0, err
    assert json.loads(out)["ratings"][0]["name"] == "champion"
    # FEEDBACK_POSTGRES_DSN wins over BOT_POSTGRES_DSN
    code, _, err = await report("--json", env={"FEEDBACK_POSTGRES_DSN": DEAD_DSN, "BOT_POSTGRES_DSN": seeded_dsn})
    assert code == 2, err


async def test_unreachable_database_is_one_readable_line_and_exit_code_2() -> None:
    code, out, err = await report("--dsn", DEAD_DSN, "--json")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cannot reach the database"), err
    assert "secret-password" not in err  # the DSN (and its password) is never echoed


async def test_an_unmigrated_database_is_reported_not_migrated(
    fresh_schema_dsn: Callable[[], Awaitable[str]],
) -> None:
    dsn = await fresh_schema_dsn()
    code, out, err = await report("--dsn", dsn)
    assert code == 1 and out == ""
    assert "migrate" in err
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    finally:
        await conn.close()
    assert tables == 0
