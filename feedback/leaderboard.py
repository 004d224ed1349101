"""The arena leaderboard from the database: votes (and interleaved likes) in, fitted ratings out, cached in Redis.

The fit is pure math in `feedback.arena`; this module owns the I/O around it: reading the aggregated rows, turning
interleaved analyses into outcomes, running the bootstrap off the event loop, and sharing the result through Redis
so every bot process (and /stats) reads one recent board instead of refitting per request.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

from redis.asyncio import Redis

from feedback.arena import Interleaved, Leaderboard, VoteTable, credit, fit
from storage.cache import degrade_when_redis_down
from storage.cache.keys import DEFAULT_PREFIX, key
from storage.db import Connection, UnitOfWork
from storage.repositories import InterleavedRecord, Repo

logger = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 600

NamesProvider = Callable[[], Iterable[str] | Awaitable[Iterable[str]]]


def as_interleaved(record: InterleavedRecord) -> Interleaved:
    """Team "a" is the left recommender's works, team "b" the right one's: the same orientation as a vote."""
    return Interleaved(
        artwork_ids=[*record.left_ids, *record.right_ids],
        teams=["a"] * len(record.left_ids) + ["b"] * len(record.right_ids),
    )


async def load_vote_table(conn: Connection, names: Iterable[str] = ()) -> VoteTable:
    """Side-by-side votes plus one outcome per interleaved analysis that the likes decide (undecided ones skipped)."""
    arena = Repo(conn).arena
    rows = list(await arena.vote_rows())
    outcomes: Counter[tuple[str, str, str]] = Counter()
    for record in await arena.interleaved():
        outcome = credit(as_interleaved(record), record.likes)
        if outcome is not None:
            outcomes[(record.left_recommender, record.right_recommender, outcome)] += 1
    rows.extend((left, right, choice, count) for (left, right, choice), count in outcomes.items())
    return VoteTable.from_rows(rows, names)


async def compute_leaderboard(
    uow: UnitOfWork, names: Iterable[str] = (), *, bootstrap: int = 1000, seed: int = 0
) -> Leaderboard:
    """Read the table, then fit in a thread: a thousand bootstrap replicates must not stall the bot's event loop."""
    async with uow() as repo:
        table = await load_vote_table(repo.conn, names)
    return await asyncio.to_thread(fit, table, bootstrap=bootstrap, seed=seed)


class LeaderboardCache:
    """The latest fitted board in Redis as JSON (never pickle); an entry older than the TTL counts as absent."""

    def __init__(self, redis: Redis, *, ttl_seconds: int = DEFAULT_TTL_SECONDS, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self._ttl = int(ttl_seconds)
        self._key = key(prefix, "arena", "leaderboard")

    @degrade_when_redis_down(None)
    async def get(self) -> Leaderboard | None:
        """The cached board; None when absent, expired, unreadable (such an entry is dropped) or Redis is away."""
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        try:
            return Leaderboard.from_json(raw.decode() if isinstance(raw, bytes) else raw)
        except (ValueError, KeyError, TypeError, AttributeError):  # JSONDecodeError and UnicodeDecodeError too
            logger.warning("dropping unreadable cached leaderboard")
            await self._redis.delete(self._key)
            return None

    @degrade_when_redis_down(None)
    async def put(self, board: Leaderboard) -> None:
        await self._redis.set(self._key, board.to_json(), ex=self._ttl)


async def _names(provider: NamesProvider) -> list[str]:
    names = provider()
    if inspect.isawaitable(names):
        names = await names
    return list(names)


async def refresh_leaderboard(
    uow: UnitOfWork, cache: LeaderboardCache, names_provider: NamesProvider, bootstrap: int
) -> Leaderboard:
    """One refit into the cache (the bot runs it every BOT_ARENA_REFRESH_S as a background job)."""
    board = await compute_leaderboard(uow, await _names(names_provider), bootstrap=bootstrap)
    await cache.put(board)
    logger.debug("arena leaderboard refreshed: %d votes", board.total_votes)
    return board
