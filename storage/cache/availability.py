"""What "Redis is away" means, decided once for the whole cache package.

Most Redis helpers are optimisations (the analysis cache, the rate limiter, the shown-analysis registry, the
leaderboard cache): when Redis is away they degrade quietly through `degrade_when_redis_down`, with one warning
line and no traceback, and the caller carries on (computes again, allows, falls back to Postgres). The feedback
outbox is not an optimisation: a vote answered "queued" must really be queued, so it raises `REDIS_DOWN`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis import exceptions as redis_errors

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

# Refused, reset, timed out, still loading its data set after a restart, or no pooled connection free in time
# (redis-py raises ConnectionError for that too). BusyLoadingError is a ConnectionError; it is named for clarity.
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.BusyLoadingError,
    redis_errors.TimeoutError,
    TimeoutError,
    OSError,
)


def degrade_when_redis_down(
    fallback: R,
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate an async method of an optional Redis helper: when Redis is away, log one warning and return
    `fallback` (share only immutable fallbacks: the same object is returned every time)."""

    def decorate(method: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(method)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await method(*args, **kwargs)
            except REDIS_DOWN as exc:
                logger.warning("Redis unavailable (%s); %s skipped", type(exc).__name__, method.__qualname__)
                return fallback

        return wrapper

    return decorate
