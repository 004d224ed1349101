"""The Redis client the processes share, built to ride out a Redis restart.

A restart (or `kill -9` and a supervisor bringing it back) leaves every pooled connection dead. Each command is
retried with exponential backoff on ConnectionError/TimeoutError for about `retry_budget_s` seconds, so a
restart of a few seconds is invisible to callers; the pool replaces dead connections (it checks them at
checkout, and PINGs any idle for `health_check_interval`). Past the budget the error reaches the caller, which
decides (see `storage.cache.availability`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

BACKOFF_BASE_S = 0.05  # first sleep 0.1 s: a connection reset by a restart usually heals on the first retry
BACKOFF_CAP_S = 1.0  # then about once a second while Redis is away
POOL_TIMEOUT_S = 20.0  # waiting for a free pooled connection; past that, ConnectionError("No connection available")


def retries_for(budget_s: float, backoff: ExponentialBackoff) -> int:
    """How many retries make the backoff sleeps add up to at least `budget_s` (at least one retry)."""
    retries, slept = 0, 0.0
    while slept < budget_s or retries == 0:
        retries += 1
        slept += backoff.compute(retries)
    return retries


def create_redis(
    url: str,
    *,
    max_connections: int = 64,
    retry_budget_s: float = 6.0,
    health_check_interval: int = 5,
    socket_timeout: float = 5.0,
    socket_connect_timeout: float = 2.0,
    **connection_kwargs: Any,
) -> Redis:
    """A client over a blocking pool of at most `max_connections` that retries for about `retry_budget_s`.

    Importing or calling this does no I/O: the first command connects. Extra keyword arguments (e.g.
    `decode_responses`, `client_name`) go to the connections. Close with `await client.aclose()`, which also
    closes the pool.
    """
    backoff = ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S)
    retry = Retry(
        backoff, retries=retries_for(retry_budget_s, backoff), supported_errors=(ConnectionError, TimeoutError)
    )
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_TIMEOUT_S,
        retry=retry,
        health_check_interval=health_check_interval,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        socket_keepalive=True,
        **connection_kwargs,
    )
    return Redis.from_pool(pool)
