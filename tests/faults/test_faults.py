"""The bot process under faults: stores restarting, Telegram flood limits, the service dying, a burst of users.

Short versions (12-20 users); benchmarks/bench_faults.py runs the same scenarios with 100 and more.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.conftest import check
from tests.faults.harness import (
    Servers,
    burst,
    inference_restart,
    postgres_down_redis_kill,
    postgres_restart,
    redis_kill,
    telegram_flood,
)

pytestmark = pytest.mark.faults


async def test_presses_while_postgres_restarts_are_answered_and_stored_exactly_once(servers: Servers) -> None:
    check(await postgres_restart(servers, users=12))


async def test_redis_killed_and_restarted_loses_no_saved_press_and_leaves_no_photo_unexplained(
    servers: Servers,
) -> None:
    check(await redis_kill(servers, users=12))


async def test_presses_queued_while_postgres_is_down_survive_a_redis_kill(servers: Servers) -> None:
    check(await postgres_down_redis_kill(servers, users=12))


async def test_every_third_send_refused_with_429_still_delivers_every_answer_once(servers: Servers) -> None:
    check(await telegram_flood(servers, users=12), fault_overlaps_presses=False)


async def test_inference_killed_mid_burst_tells_users_and_answers_every_resend(
    servers: Servers, tiny_gallery: Path, tiny_model_env: dict[str, str]
) -> None:
    servers.gallery, servers.model_env = tiny_gallery, tiny_model_env
    check(await inference_restart(servers, users=12), fault_overlaps_presses=False)


async def test_a_burst_of_thirty_users_is_answered_and_every_press_stored_once(servers: Servers) -> None:
    check(await burst(servers, users=30), fault_overlaps_presses=False)
