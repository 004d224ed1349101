"""The deployment files stay valid: compose parses offline, and the image carries every package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bot.settings import BotSettings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed")
@pytest.mark.parametrize("profile", [[], ["--profile", "monitoring"]], ids=["default", "monitoring"])
def test_compose_file_is_valid_with_the_example_env_filled_in(tmp_path: Path, profile: list[str]) -> None:
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
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), *profile, "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "python -m inference.serve" in result.stdout or "inference.serve" in result.stdout
    assert "BOT_INFERENCE_URL: http://inference:8000" in result.stdout
    services = yaml.safe_load(result.stdout)["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]  # a plain `up` does not start it
    assert all("profiles" not in services[name] for name in ("postgres", "redis", "inference", "bot"))


def test_prometheus_scrapes_the_ports_the_services_serve_metrics_on() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounted = [v.split(":")[0] for v in compose["prometheus"]["volumes"] if v.endswith("prometheus.yml:ro")]
    assert mounted == ["./monitoring/prometheus.yml"]
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (sd["names"], sd["port"]) for job in config["scrape_configs"] for sd in job["dns_sd_configs"]
    }
    inference_port = int(compose["inference"]["command"][compose["inference"]["command"].index("--port") + 1])
    assert targets == {
        "inference": (["inference"], inference_port),
        "bot": (["bot"], BotSettings.model_fields["metrics_port"].default),
    }


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed")
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
