"""Background jobs stop when the bot stops, even when a library swallows the cancellation meant for them."""

from __future__ import annotations

import asyncio

from bot.background import Job, running


async def test_a_job_whose_cancellation_is_swallowed_still_stops_with_the_bot() -> None:
    rounds = 0
    inside = asyncio.Event()

    async def swallows_its_cancellation() -> None:
        # What Python 3.11's asyncio.wait_for (inside asyncpg and redis) can do when a cancellation lands just as
        # the call it wraps completes: the round ends normally and the task never learns it was cancelled.
        nonlocal rounds
        rounds += 1
        inside.set()
        try:
            await asyncio.sleep(0.5)
        except asyncio.CancelledError:
            pass

    async def bot_runs_then_stops() -> None:
        async with running([Job("outbox", swallows_its_cancellation, 0.01)]):
            await inside.wait()  # leave while the job is mid-round, so the cancellation lands in the swallowing call

    await asyncio.wait_for(bot_runs_then_stops(), 5)  # the shutdown finishes instead of hanging
    after_stop = rounds
    await asyncio.sleep(0.3)
    assert rounds == after_stop == 1  # and the job does not go on writing after the bot stopped


async def test_a_failing_round_is_retried_at_the_next_tick() -> None:
    outcomes: list[str] = []

    async def flaky() -> None:
        outcomes.append("fail" if len(outcomes) == 0 else "ok")
        if outcomes[-1] == "fail":
            raise ConnectionError("database restarting")

    async with running([Job("outbox", flaky, 0.01)]):
        while len(outcomes) < 3:
            await asyncio.sleep(0.01)
    assert outcomes[:3] == ["fail", "ok", "ok"]
