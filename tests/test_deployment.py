"""The deployment files stay valid: compose parses offline, and the image carries every package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed"
)
def test_compose_file_is_valid_with_the_example_env_filled_in(tmp_path: Path) -> None:
    env = (ROOT / ".env.example").read_text()
    for key, value in {
        "BOT_TOKEN": "1:token",
        "INFERENCE_TOKEN": "secret",
        "POSTGRES_PASSWORD": "pw",
    }.items():
        env = env.replace(f"{key}=\n", f"{key}={value}\n")
    env_file = tmp_path / ".env"
    env_file.write_text(env)
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "python -m inference.serve" in result.stdout or "inference.serve" in result.stdout
    assert "BOT_INFERENCE_URL: http://inference:8000" in result.stdout


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed"
)
def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(empty), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "set " in result.stderr and ".env" in result.stderr


def test_image_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("bot", "inference", "feedback", "storage"):
        assert f"COPY {package} ./{package}" in dockerfile
