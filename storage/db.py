"""The asyncpg pool, created patiently (after a restart the bot may start before Postgres is ready), what
"the database is unavailable" means, and the one place where transactions begin (`unit_of_work`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

if TYPE_CHECKING:
    from storage.repositories import Repo

logger = logging.getLogger(__name__)

# What repositories accept: a plain connection or one borrowed from a pool.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

# Errors that mean "not up yet" (refused, starting up, in recovery, too busy); anything else, such as a wrong
# password or a missing database, will not heal by waiting and is raised at once.
TRANSIENT_CONNECT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)

# Errors that mean "the database is away right now" once the pool exists: the above (refused, pool-acquire
# timeout, which is the builtin TimeoutError, too many connections, a connection lost mid-query) plus a closed
# or closing connection and a server shutting down under a running query (a restart). A caller that catches
# these may queue the work for later (the feedback outbox); everything else is a bug or bad data.
DATABASE_DOWN: tuple[type[BaseException], ...] = (
    *TRANSIENT_CONNECT_ERRORS,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # A pooled connection whose server went away mid-protocol can be left in a state asyncpg refuses to leave
    # ("cannot switch to state 15; another operation is in progress"): seen while Postgres shuts down under load.
    asyncpg.exceptions.InternalClientError,
)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool, *, timeout: float = 5.0) -> AsyncIterator[Repo]:
    """A connection from `pool` in one transaction, as a `Repo`: committed when the block ends, rolled back
    when it raises.

    This is the one place where transactions begin: repositories never open one, and callers (middlewares,
    services, the outbox drainer) do not call `conn.transaction()` themselves. Acquiring waits at most
    `timeout` seconds, so a dead or saturated database raises one of `DATABASE_DOWN` instead of hanging.
    """
    from storage.repositories import Repo  # storage.repositories imports this module for `Connection`

    async with pool.acquire(timeout=timeout) as conn, conn.transaction():
        yield Repo(conn)


UnitOfWork: TypeAlias = Callable[[], AbstractAsyncContextManager["Repo"]]
"""`unit_of_work` bound to a pool (`functools.partial(unit_of_work, pool)`): what flows and handlers receive
instead of the pool, so none of them can hold a connection outside a transaction."""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    wait_seconds: float = 30,
    connect_timeout: float = 10,
    **pool_kwargs: Any,
) -> asyncpg.Pool:
    """Create a pool, retrying with backoff for up to `wait_seconds` until Postgres answers `SELECT 1`.

    Extra keyword arguments (e.g. `server_settings`, `init`) go to `asyncpg.create_pool`.
    The DSN is never logged: it may hold a password.
    """
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    attempt = 0
    while True:
        attempt += 1
        pool: asyncpg.Pool | None = None
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, timeout=connect_timeout, **pool_kwargs
            )
            await pool.fetchval("SELECT 1")
        except BaseException as exc:
            if pool is not None:
                pool.terminate()
            if not isinstance(exc, TRANSIENT_CONNECT_ERRORS):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.error("Postgres still unavailable after %d attempts (%s)", attempt, type(exc).__name__)
                raise
            logger.warning(
                "Postgres not ready (%s); retrying in %.1fs", type(exc).__name__, min(delay, remaining)
            )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 2.0)
            continue
        if attempt > 1:
            logger.info("Postgres ready after %d attempts", attempt)
        return pool
