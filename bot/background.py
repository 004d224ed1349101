"""The bot's background jobs (outbox replay, arena refresh, daily picks) run one way: a job is a coroutine run
every N seconds in one task group; a failing round is logged and retried at the next tick, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    run_once: Callable[[], Awaitable[Any]]
    every_s: float


async def repeat(job: Job, stop: asyncio.Event | None = None) -> None:
    """Run the job every `every_s` seconds until `stop` is set or the task is cancelled.

    The stop flag is checked between rounds as well as the cancellation: on Python 3.11, `asyncio.wait_for` (used
    inside asyncpg and redis clients) can swallow a cancellation that lands as its inner call completes. A job that
    lost its one cancellation that way would otherwise go on forever, holding its task group's exit open, which is a
    bot that never finishes shutting down and keeps writing after it was told to stop.
    """
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            await job.run_once()
        except Exception as exc:
            logger.warning("%s: round failed (%s); will retry", job.name, type(exc).__name__, exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), job.every_s)


@contextlib.asynccontextmanager
async def running(jobs: list[Job]) -> AsyncIterator[None]:
    """The jobs run while the block runs; leaving it stops and cancels them all (mid-round is fine: each is
    idempotent)."""
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(repeat(job, stop), name=job.name) for job in jobs]
        try:
            yield
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
