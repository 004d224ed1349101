"""A small async micro-batcher: concurrent requests share one model call, which runs off the event loop.

Models are much faster per item on a batch than one by one, and torch/FAISS calls block, so they must never
run on the event loop. Each batcher owns one worker task that collects up to `max_batch` items (waiting at
most `max_wait_ms` for stragglers), runs the batch function in its executor, and resolves every caller's
future. The queue is bounded: when `max_queue` items already wait behind the batch being computed, a new
one gets `Overloaded` at once rather than waiting for minutes. A caller that gives up (its client hung up)
cancels its future: the item leaves the queue, or is skipped if a batch already took it, and is counted in
`dropped`, so no model time is spent on an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_running: weakref.WeakSet[MicroBatcher[Any, Any]] = weakref.WeakSet()


def running_batchers() -> list[MicroBatcher[Any, Any]]:
    """The batchers whose worker runs now, in this process: what the queue-depth metric reads at scrape time."""
    return list(_running)


class Overloaded(RuntimeError):
    """Too many requests are waiting; the caller should retry after `retry_after` seconds."""

    def __init__(self, name: str, retry_after: int) -> None:
        super().__init__(f"{name}: queue full, retry in {retry_after}s")
        self.retry_after = retry_after


class BatcherClosed(Overloaded):
    """The batcher is stopping (the service shuts down); to a client this is the same as overloaded."""


@dataclass(eq=False)  # compared by identity: items may be images or arrays
class _Pending(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Batches `submit(item)` calls into `fn(items) -> results` (same length, same order)."""

    def __init__(
        self,
        name: str,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        executor: Executor | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.name = name
        self._fn = fn
        self._max_batch = max_batch
        self._max_wait = max(0.0, max_wait_ms) / 1000.0
        self._max_queue = max(0, max_queue)
        self._executor = executor
        self._pending: deque[_Pending[T, R]] = deque()
        self._running: list[_Pending[T, R]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self._batch_seconds = 0.0  # moving average of one batch, for Retry-After
        self.dropped = 0
        """Items whose caller gave up before their batch was computed (never passed to the model)."""

    @property
    def queued(self) -> int:
        """Items waiting for a batch (not counting the batch being computed)."""
        return len(self._pending)

    @property
    def in_batch(self) -> int:
        """Items in the batch being computed right now."""
        return len(self._running)

    @property
    def computing(self) -> bool:
        """Whether a batch is being computed right now."""
        return bool(self._running)

    def start(self) -> None:
        if self._worker is None:
            self._closed = False
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")
            _running.add(self)

    async def submit(self, item: T) -> R:
        """Queue one item and wait for its result; raises `Overloaded` at once when the queue is full."""
        if self._closed or self._worker is None:
            raise BatcherClosed(self.name, self.retry_after())
        if len(self._pending) >= self._capacity():
            raise Overloaded(self.name, self.retry_after())
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        pending = _Pending(item, future)
        self._pending.append(pending)
        future.add_done_callback(lambda done: self._forget(pending) if done.cancelled() else None)
        self._wakeup.set()
        return await future  # cancelling the caller cancels the future; the worker then skips the item

    def _capacity(self) -> int:
        """While a batch computes, every pending item waits for it: at most `max_queue` may. While the worker
        is only gathering the next batch, the items that fit into that batch are not waiting on anything."""
        return self._max_queue if self._running else self._max_queue + self._max_batch

    def _forget(self, pending: _Pending[T, R]) -> None:
        """A caller gave up (client gone, or the other half of /v1/analyze failed): free its queue slot."""
        try:
            self._pending.remove(pending)
        except ValueError:
            return  # already taken into a batch, which skips it (and counts it) or has computed it
        self.dropped += 1

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: batches ahead of a new item times a batch's time."""
        batches = len(self._pending) / self._max_batch + 1
        return max(1, min(60, math.ceil(batches * max(self._batch_seconds, 0.5))))

    async def stop(self) -> None:
        """Refuse new items, stop the worker, and fail everything still waiting so no caller hangs."""
        self._closed = True
        _running.discard(self)
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            try:
                await worker
            except asyncio.CancelledError:
                pass
        error = BatcherClosed(self.name, 1)
        for pending in [*self._running, *self._pending]:
            if not pending.future.done():
                pending.future.set_exception(error)
        self._running.clear()
        self._pending.clear()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._collect()
            batch = [self._pending.popleft() for _ in range(min(self._max_batch, len(self._pending)))]
            self._running = [p for p in batch if not p.future.done()]  # drop callers that gave up
            self.dropped += len(batch) - len(self._running)
            if not self._running:
                continue
            items = [p.item for p in self._running]
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(self._executor, self._fn, items)
                if len(results) != len(items):
                    raise RuntimeError(f"{self.name}: batch function returned {len(results)} for {len(items)}")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the batch failed: every caller of it gets the error
                logger.warning("%s batch of %d failed: %s", self.name, len(items), type(exc).__name__)
                for pending in self._running:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
            else:
                for pending, result in zip(self._running, results, strict=True):
                    if not pending.future.done():
                        pending.future.set_result(result)
            finally:
                elapsed = time.perf_counter() - started
                self._batch_seconds = elapsed if self._batch_seconds == 0 else 0.8 * self._batch_seconds + 0.2 * elapsed
            self._running = []

    async def _collect(self) -> None:
        """Wait for a first item, then up to `max_wait` for the batch to fill."""
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while len(self._pending) < self._max_batch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                break
