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


async def repeat(job: Job) -> None:
    """Run the job every `every_s` seconds until cancelled."""
    while True:
        try:
            await job.run_once()
        except Exception as exc:
            logger.warning("%s: round failed (%s); will retry", job.name, type(exc).__name__, exc_info=True)
        await asyncio.sleep(job.every_s)


@contextlib.asynccontextmanager
async def running(jobs: list[Job]) -> AsyncIterator[None]:
    """The jobs run while the block runs; leaving it cancels them all (mid-round is fine: each is idempotent)."""
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(repeat(job), name=job.name) for job in jobs]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
