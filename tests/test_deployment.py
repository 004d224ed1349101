"""The deployment files stay valid: compose parses offline, and the image carries every package."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

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
def test_compose_refuses_to_start_without_a_bot_token(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(empty), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "set BOT_TOKEN in .env" in result.stderr and "@BotFather" in result.stderr


def test_image_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("bot", "inference", "feedback", "storage"):
        assert f"COPY {package} ./{package}" in dockerfile


def compose_config(env_file: Path) -> dict[str, Any]:
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name (or host path), from the long or short syntax `config` may print."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        found[target] = source
    return found


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed")
def test_only_the_bot_token_is_needed_and_the_volumes_are_wired(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BOT_TOKEN=1:token\n")
    config = compose_config(env_file)
    services = config["services"]
    assert "secrets" in config["volumes"] and "models" in config["volumes"]
    for name in ("secrets", "postgres", "inference", "bot"):
        assert mounts(services[name]).get("/run/artmatch-secrets") == "secrets", name
    for name in ("postgres", "inference", "bot"):
        assert services[name]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
    assert services["inference"]["entrypoint"] == ["artmatch-secrets", "--"]
    assert services["bot"]["entrypoint"] == ["artmatch-secrets", "--"]
    assert services["secrets"]["restart"] == "no"
    assert services["secrets"]["entrypoint"] == ["artmatch-secrets"]  # nothing to exec: it makes the files, exits
    assert services["secrets"]["command"] == ["--dir", "/run/artmatch-secrets"]
    assert "/run/artmatch-secrets/postgres_password" in " ".join(services["postgres"]["entrypoint"])
    inference = services["inference"]
    assert mounts(inference)["/models"] == "models"
    environment = inference["environment"]
    assert environment["INFERENCE_MODELS_DIR"] == "/models"
    assert environment["INFERENCE_LLAVA_PATH"] == "llava-hf/llava-v1.6-mistral-7b-hf"  # a hub id: fetched
    assert environment["INFERENCE_CLIP_WEIGHTS"] == "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k"
    assert not environment["INFERENCE_TOKEN"] and not services["bot"]["environment"]["BOT_INFERENCE_TOKEN"]
    assert "@postgres:5432" in services["bot"]["environment"]["BOT_POSTGRES_DSN"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose (1.29, Debian) not installed")
def test_the_operators_secrets_reach_the_containers(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BOT_TOKEN=1:token\nINFERENCE_TOKEN=op-token\nPOSTGRES_PASSWORD=op-pw\n")
    services = compose_config(env_file)["services"]
    assert services["inference"]["environment"]["INFERENCE_TOKEN"] == "op-token"
    assert services["bot"]["environment"]["BOT_INFERENCE_TOKEN"] == "op-token"
    assert services["bot"]["environment"]["POSTGRES_PASSWORD"] == "op-pw"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "op-pw"


def test_image_ships_the_secrets_entrypoint_and_may_download_models() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY scripts/secrets /usr/local/bin/artmatch-secrets" in dockerfile
    assert "HF_HUB_OFFLINE=1" not in dockerfile  # the service downloads on first start, then goes offline itself
    assert "chown artmatch:artmatch /models /run/artmatch-secrets" in dockerfile
