"""First start with only BOT_TOKEN set: internal secrets are made and kept in a volume; a bad token says where to
get one. The secrets entrypoint (`scripts/secrets`) and `python -m bot` run as in a container, in subprocesses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ROOT / "scripts" / "secrets"
SECRET_VARS = ("INFERENCE_TOKEN", "BOT_INFERENCE_TOKEN", "POSTGRES_PASSWORD", "PGPASSWORD")
SHOW = f"import os; print(' '.join(os.environ.get(v, '-') for v in {SECRET_VARS!r}))"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS and not k.startswith("BOT_")}
    return {**env, **extra}


def with_secrets(volume: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SECRETS), "--dir", str(volume), "--", sys.executable, "-c", SHOW]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_secrets_are_made_once_private_and_shared(tmp_path: Path) -> None:
    volume = tmp_path / "secrets"
    first = with_secrets(volume, clean_env())
    assert first.returncode == 0, first.stderr
    token, bot_token, password, pgpassword = first.stdout.split()
    assert token == bot_token and password == pgpassword and token != password
    assert len(token) >= 40 and len(password) >= 40  # token_urlsafe(32)
    for name in ("inference_token", "postgres_password"):
        assert stat.S_IMODE((volume / name).stat().st_mode) == 0o600
    assert sorted(p.name for p in volume.iterdir()) == ["inference_token", "postgres_password"]
    again = with_secrets(volume, clean_env())  # the other container, or the next start
    assert again.stdout == first.stdout
    assert token not in first.stderr + again.stderr


def test_the_operators_values_win_and_are_not_written(tmp_path: Path) -> None:
    volume = tmp_path / "secrets"
    result = with_secrets(volume, clean_env(INFERENCE_TOKEN="operator-token", POSTGRES_PASSWORD="operator-pw"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["operator-token", "operator-token", "operator-pw", "operator-pw"]
    assert not volume.exists() or not any(volume.iterdir())


def test_one_shot_without_a_command_makes_the_files(tmp_path: Path) -> None:
    volume = tmp_path / "secrets"
    made = subprocess.run([sys.executable, str(SECRETS), "--dir", str(volume)], env=clean_env(), check=False)
    assert made.returncode == 0
    assert (volume / "inference_token").read_text().strip() and (volume / "postgres_password").read_text().strip()
    read = with_secrets(volume, clean_env())
    assert read.stdout.split()[0] == (volume / "inference_token").read_text().strip()


def test_an_unwritable_volume_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = with_secrets(blocker / "secrets", clean_env())
    assert result.returncode == 1
    assert result.stderr.startswith(f"cannot keep internal secrets in {blocker / 'secrets'}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("token", [None, "", "changeme", "123456:ABC"])
def test_a_missing_or_placeholder_bot_token_says_where_to_get_one(tmp_path: Path, token: str | None) -> None:
    env = clean_env(BOT_INFERENCE_TOKEN="internal-token", PYTHONPATH=str(ROOT))
    if token is not None:
        env["BOT_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BOT_TOKEN" in lines[0] and "@BotFather" in lines[0]
