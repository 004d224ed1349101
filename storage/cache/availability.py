"""What "Redis is away" means, decided once for the whole cache package.

Most Redis helpers are optimisations (the analysis cache, the rate limiter, the shown-analysis registry, the
leaderboard cache): when Redis is away they degrade quietly through `degrade_when_redis_down`, with one warning
line and no traceback, and the caller carries on (computes again, allows, falls back to Postgres). The feedback
outbox is not an optimisation: a vote answered "queued" must really be queued, so it raises `REDIS_DOWN`.
"""

from __future__ import annotations

import functools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F")

# Refused, reset, timed out, still loading its data set after a restart, or no pooled connection free in time
# (redis-py raises ConnectionError for that too). BusyLoadingError is a ConnectionError; it is named for clarity.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.BusyLoadingError,
    redis_errors.TimeoutError,
    TimeoutError,
    OSError,
)


# After one optional call has waited out the client's whole retry budget (storage.cache.connection) and failed,
# the others skip Redis for this long instead of each waiting the budget again: a photo makes several optional
# calls, and a Redis that is down for good must not add the budget to every one of them. Writes that must
# happen (the outbox) are not decorated, so they always try.
AWAY_S = 5.0
_away_until: weakref.WeakKeyDictionary[Redis, float] = weakref.WeakKeyDictionary()


def _known_away(client: Redis | None) -> bool:
    return client is not None and _away_until.get(client, 0.0) > time.monotonic()


def _mark_away(client: Redis | None) -> None:
    if client is not None:
        _away_until[client] = time.monotonic() + AWAY_S


def degrade_when_redis_down(
    fallback: F,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R | F]]]:
    """Decorate an async method of an optional Redis helper: when Redis is away, log one warning and return
    `fallback` (share only immutable fallbacks: the same object is returned every time)."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R | F]]:
        @functools.wraps(method)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | F:
            client = getattr(args[0], "_redis", None) if args else None
            if _known_away(client):
                return fallback
            try:
                return await method(*args, **kwargs)
            except REDIS_DOWN as exc:
                logger.warning("Redis unavailable (%s); %s skipped", type(exc).__name__, method.__qualname__)
                _mark_away(client)
                return fallback

        return wrapper

    return decorate
