"""The micro-batcher: batching, error propagation, the bounded queue and shutdown."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference.batcher import BatcherClosed, MicroBatcher, Overloaded


class Recorder:
    """A batch function that records batch sizes and the thread it ran on, and can be held."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.threads: set[str] = set()
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()

    def __call__(self, items: list[int]) -> list[int]:
        self.entered.set()
        self.release.wait(10)
        self.batches.append(items)
        self.threads.add(threading.current_thread().name)
        return [item * 10 for item in items]


async def test_concurrent_calls_share_batches_off_the_loop() -> None:
    recorder = Recorder()
    batcher = MicroBatcher("t", recorder, max_batch=4, max_wait_ms=50, max_queue=100)
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    finally:
        await batcher.stop()
    assert results == [i * 10 for i in range(10)]
    assert [len(b) for b in recorder.batches] == [4, 4, 2]
    assert threading.main_thread().name not in recorder.threads


async def test_batch_errors_reach_every_caller_of_that_batch() -> None:
    def boom(items: list[int]) -> list[int]:
        raise ValueError(f"bad batch {items}")

    batcher = MicroBatcher("t", boom, max_batch=8, max_wait_ms=20, max_queue=100)
    batcher.start()
    try:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    finally:
        await batcher.stop()
    assert all(isinstance(r, ValueError) for r in results)


async def test_wrong_result_count_is_an_error() -> None:
    batcher: MicroBatcher[int, int] = MicroBatcher(
        "t", lambda items: items[:1], max_batch=8, max_wait_ms=20, max_queue=100
    )
    batcher.start()
    try:
        with pytest.raises(RuntimeError, match="returned"):
            await asyncio.gather(batcher.submit(1), batcher.submit(2))
        assert await batcher.submit(3) == 3  # the worker survives a failed batch
    finally:
        await batcher.stop()


async def test_full_queue_overloads_immediately_and_frees_up() -> None:
    recorder = Recorder()
    recorder.release.clear()
    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher("t", recorder, max_batch=1, max_wait_ms=0, max_queue=2, executor=executor)
    batcher.start()
    try:
        running = asyncio.ensure_future(batcher.submit(0))
        await asyncio.to_thread(recorder.entered.wait, 5)  # item 0 is being computed, the queue is empty
        waiting = [asyncio.ensure_future(batcher.submit(i)) for i in (1, 2)]
        await asyncio.sleep(0)
        assert batcher.queued == 2
        with pytest.raises(Overloaded) as info:
            await batcher.submit(3)
        assert 1 <= info.value.retry_after <= 60
        recorder.release.set()
        assert await running == 0
        assert await asyncio.gather(*waiting) == [10, 20]
        assert await batcher.submit(4) == 40
    finally:
        recorder.release.set()
        await batcher.stop()
        executor.shutdown()


async def test_zero_queue_lets_nothing_wait_behind_a_running_batch() -> None:
    recorder = Recorder()
    recorder.release.clear()
    executor = ThreadPoolExecutor(1)
    batcher = MicroBatcher("t", recorder, max_batch=3, max_wait_ms=20, max_queue=0, executor=executor)
    batcher.start()
    try:
        # An idle batcher still gathers a batch: a burst that fits into it is not "waiting".
        burst = [asyncio.ensure_future(batcher.submit(i)) for i in range(3)]
        await asyncio.to_thread(recorder.entered.wait, 5)
        with pytest.raises(Overloaded):  # the batch is computing: nothing may queue behind it
            await batcher.submit(9)
        recorder.release.set()
        assert await asyncio.gather(*burst) == [0, 10, 20]
        assert recorder.batches == [[0, 1, 2]]
    finally:
        recorder.release.set()
        await batcher.stop()
        executor.shutdown()


async def test_a_burst_larger_than_the_queue_is_batched_not_refused() -> None:
    recorder = Recorder()
    batcher = MicroBatcher("t", recorder, max_batch=8, max_wait_ms=50, max_queue=1)
    batcher.start()
    try:
        assert await asyncio.gather(*(batcher.submit(i) for i in range(8))) == [i * 10 for i in range(8)]
    finally:
        await batcher.stop()


async def test_cancelled_callers_are_skipped() -> None:
    recorder = Recorder()
    recorder.release.clear()
    batcher = MicroBatcher("t", recorder, max_batch=1, max_wait_ms=0, max_queue=10, executor=ThreadPoolExecutor(1))
    batcher.start()
    try:
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.to_thread(recorder.entered.wait, 5)
        gave_up = asyncio.ensure_future(batcher.submit(2))
        await asyncio.sleep(0)
        gave_up.cancel()
        recorder.release.set()
        assert await first == 10
        assert await batcher.submit(3) == 30
        assert recorder.batches == [[1], [3]]
    finally:
        recorder.release.set()
        await batcher.stop()


async def test_stop_fails_waiting_callers_and_refuses_new_ones() -> None:
    recorder = Recorder()
    recorder.release.clear()
    batcher = MicroBatcher("t", recorder, max_batch=1, max_wait_ms=0, max_queue=10, executor=ThreadPoolExecutor(1))
    batcher.start()
    running = asyncio.ensure_future(batcher.submit(1))
    await asyncio.to_thread(recorder.entered.wait, 5)
    waiting = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    await batcher.stop()
    recorder.release.set()
    for future in (running, waiting):
        with pytest.raises(BatcherClosed):
            await future
    with pytest.raises(BatcherClosed):
        await batcher.submit(3)
