"""The leaderboard from the real database: votes and interleaved likes in, a fitted board out, cached in Redis."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import pytest
from redis.asyncio import Redis

from bot.background import Job, repeat
from feedback.arena import VoteTable, fit
from feedback.leaderboard import (
    LeaderboardCache,
    NamesProvider,
    compute_leaderboard,
    load_vote_table,
    refresh_leaderboard,
)
from storage.db import unit_of_work
from storage.repositories import Repo, ShownSet
from tests.storage.test_repositories import _artwork

CHOICE_INDEX = {"left": 0, "right": 1, "both": 2, "neither": 3}


def recommender(label: str) -> str:
    """A name no other test uses: the session schema is shared, and vote_rows() aggregates all of it."""
    return f"{label}_{uuid.uuid4().hex[:8]}"


async def add_analysis(
    pool: asyncpg.Pool,
    new_id: Callable[[], int],
    user_id: int,
    left: str,
    right: str,
    *,
    per_side: int = 2,
    mode: str = "sides",
) -> tuple[int, list[int], list[int]]:
    """An analysis with `left` on the left and `right` on the right, stored as the bot stores it."""
    left_ids = [new_id() for _ in range(per_side)]
    right_ids = [new_id() for _ in range(per_side)]
    async with pool.acquire() as conn, conn.transaction():
        repo = Repo(conn)
        await repo.users.touch(user_id, "en")
        await repo.artworks.upsert_many([_artwork(i) for i in left_ids + right_ids])
        analysis_id = await repo.analyses.create(
            user_id=user_id,
            image_sha256="ef" * 32,
            description="a test picture",
            model_versions={},
            latency_ms=1,
            from_cache=False,
            sets=[ShownSet(left, "left", left_ids), ShownSet(right, "right", right_ids)],
            mode=mode,  # type: ignore[arg-type]
            display_ids=[i for pair in zip(left_ids, right_ids, strict=True) for i in pair]
            if mode == "interleaved"
            else None,
        )
    return analysis_id, left_ids, right_ids


async def seed_votes(
    pool: asyncpg.Pool, new_id: Callable[[], int], left: str, right: str, choices: Sequence[str]
) -> None:
    """One user, one analysis and one vote per choice (a user votes once per analysis)."""
    for choice in choices:
        user_id = new_id()
        analysis_id, _, _ = await add_analysis(pool, new_id, user_id, left, right)
        async with pool.acquire() as conn:
            await Repo(conn).votes.upsert(user_id, analysis_id, choice)  # type: ignore[arg-type]


def cell(table: VoteTable, left: str, right: str) -> list[int]:
    return [int(n) for n in table.counts[table.names.index(left), table.names.index(right)]]


async def test_vote_table_counts_votes_per_side_and_lists_unvoted_names(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    a, b, idle = recommender("alpha"), recommender("beta"), recommender("idle")
    await seed_votes(pool, new_id, a, b, ["left", "left", "left", "right", "both"])
    await seed_votes(pool, new_id, b, a, ["neither", "left"])
    async with pool.acquire() as conn:
        table = await load_vote_table(conn, names=[idle])
    assert cell(table, a, b) == [3, 1, 1, 0]
    assert cell(table, b, a) == [1, 0, 0, 1]
    assert table.pair_votes(a, b) == 7
    assert idle in table.names and table.pair_votes(idle, a) == 0


async def test_interleaved_analysis_is_credited_to_the_team_whose_works_were_liked(
    pool: asyncpg.Pool, new_id: Callable[[], int]
) -> None:
    a, b = recommender("left_team"), recommender("right_team")
    right_wins, grumpy = new_id(), new_id()
    analysis_id, left_ids, right_ids = await add_analysis(pool, new_id, right_wins, a, b, mode="interleaved")
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.likes.set(right_wins, right_ids[0], 1, analysis_id)
        await repo.likes.set(right_wins, right_ids[1], 1, analysis_id)
        await repo.likes.set(right_wins, left_ids[0], -1, analysis_id)
    # one dislike on each side: a draw that pleased nobody, i.e. "neither"
    other_id, other_left, other_right = await add_analysis(pool, new_id, grumpy, a, b, mode="interleaved")
    async with pool.acquire() as conn:
        repo = Repo(conn)
        await repo.likes.set(grumpy, other_left[0], -1, other_id)
        await repo.likes.set(grumpy, other_right[0], -1, other_id)
    # shown but never marked: no feedback, no outcome
    await add_analysis(pool, new_id, new_id(), a, b, mode="interleaved")
    async with pool.acquire() as conn:
        table = await load_vote_table(conn)
    assert cell(table, a, b) == [0, 1, 0, 1]
    assert cell(table, b, a) == [0, 0, 0, 0]
    assert table.pair_votes(a, b) == 2


async def test_compute_leaderboard_ranks_the_clear_winner_first(pool: asyncpg.Pool, new_id: Callable[[], int]) -> None:
    strong, weak, idle = recommender("strong"), recommender("weak"), recommender("idle")
    await seed_votes(pool, new_id, strong, weak, ["left"] * 12 + ["right"])
    await seed_votes(pool, new_id, weak, strong, ["right"] * 12 + ["both"])
    board = await compute_leaderboard(functools.partial(unit_of_work, pool), [strong, weak, idle], bootstrap=50, seed=1)
    ours = [r.name for r in board.ratings if r.name in {strong, weak}]
    assert ours == [strong, weak]
    unvoted = board.rating(idle)
    assert unvoted is not None and unvoted.votes == 0  # listed although nobody voted on it yet
    rating = board.rating(strong)
    assert rating is not None and rating.votes == 26 and rating.wins == 24
    assert board.bootstrap == 50


@pytest.fixture
async def dead_pool() -> AsyncIterator[asyncpg.Pool]:
    """A pool whose Postgres is down: nothing listens on its port."""
    pool = await asyncpg.create_pool("postgresql://postgres@127.0.0.1:1/test", min_size=0, max_size=1)
    yield pool
    await pool.close()


async def test_cache_round_trip_expiry_and_unreadable_entries(redis: Redis, key_prefix: str) -> None:
    cache = LeaderboardCache(redis, ttl_seconds=120, prefix=key_prefix)
    assert await cache.get() is None
    board = fit(VoteTable.from_rows([("x", "y", "left", 5), ("y", "x", "both", 2)], ["z"]), bootstrap=20)
    await cache.put(board)
    assert await cache.get() == board
    (stored,) = [k async for k in redis.scan_iter(match=f"{key_prefix}:*")]
    assert 0 < await redis.ttl(stored) <= 120
    await redis.set(stored, b"\x80 not json")
    assert await cache.get() is None
    assert await redis.exists(stored) == 0  # dropped, so the next refresh writes a good one


async def test_refresh_loop_fills_the_cache_and_survives_a_database_outage(
    pool: asyncpg.Pool, dead_pool: asyncpg.Pool, redis: Redis, key_prefix: str, new_id: Callable[[], int]
) -> None:
    a, b = recommender("fresh"), recommender("stale")
    await seed_votes(pool, new_id, a, b, ["left", "left"])
    down = LeaderboardCache(redis, prefix=f"{key_prefix}:down")
    def refresh(on: asyncpg.Pool, cache: LeaderboardCache, names: NamesProvider) -> asyncio.Task[None]:
        once = functools.partial(refresh_leaderboard, functools.partial(unit_of_work, on), cache, names, 10)
        return asyncio.create_task(repeat(Job("refresh", once, 0.05)))

    failing = refresh(dead_pool, down, lambda: [a, b])
    up = LeaderboardCache(redis, prefix=f"{key_prefix}:up")

    async def names() -> list[str]:
        return [a, b]

    working = refresh(pool, up, names)
    try:
        for _ in range(200):
            if await up.get() is not None:
                break
            await asyncio.sleep(0.05)
        board = await up.get()
        assert board is not None and board.rating(a) is not None and board.bootstrap == 10
        await asyncio.sleep(0.2)  # several failed rounds
        assert not failing.done()
        assert await down.get() is None
    finally:
        for task in (failing, working):
            task.cancel()
        await asyncio.gather(failing, working, return_exceptions=True)
