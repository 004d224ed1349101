"""Fault suite fixtures: private Postgres and Redis per test (tests/private_services.py), and the check that
prints the bot's log when a scenario breaks an invariant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import EXPECTATIONS, Counts, Servers, Timings, log_tail
from tests.private_services import PrivatePostgres, PrivateRedis


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: kills and restarts private servers under a running bot process")


@pytest.fixture
def servers(private_postgres: PrivatePostgres, private_redis: PrivateRedis, tmp_path: Path) -> Servers:
    """This test's own Postgres and Redis (durable, as shipped), and a folder for the logs."""
    return Servers(private_postgres, private_redis, tmp_path, timings=Timings(photo_deadline_s=45, settle_s=20))


def check(counts: Counts, *, fault_overlaps_presses: bool = True) -> None:
    """Fail with the counts, a few concrete failures and the bot's log when an invariant is broken."""
    problems = counts.problems(**EXPECTATIONS[counts.scenario])
    if fault_overlaps_presses and counts.presses_during_fault == 0:
        problems.append("no press happened during the fault: the scenario did not test what it says")
    summary = {k: v for k, v in counts.as_json().items() if k not in ("examples", "log")}
    Path(counts.log).with_name("counts.json").write_text(json.dumps(counts.as_json(), indent=2, ensure_ascii=False))
    if problems:
        pytest.fail(
            "\n".join(
                [
                    f"{counts.scenario}: " + "; ".join(problems),
                    "examples: " + "; ".join(counts.examples),
                    "notes: " + "; ".join(counts.notes),
                    json.dumps(summary),
                    log_tail(Path(counts.log), 40),
                ]
            ),
            pytrace=False,
        )
