"""Fault scenarios at scale: the real `python -m bot` process with 100+ simulated users while Postgres, Redis,
Telegram or the inference service fail, counted against Postgres (tests/faults/harness.py).

Each scenario gets fresh private Postgres and Redis servers (tests/private_services.py) in a temporary folder;
the inference-restart scenario also builds the tiny models and gallery the tests use (cached under
/tmp/artmatch-test-models). Everything listens on 127.0.0.1 and is stopped when a scenario ends.

    python benchmarks/bench_faults.py --users 100
    python benchmarks/bench_faults.py --users 150 --scenarios burst,postgres_restart
    python benchmarks/bench_faults.py --bot-root /tmp/previous-release --out /tmp/faults-before.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.faults.harness import EXPECTATIONS, SCENARIOS, Servers, Timings  # noqa: E402
from tests.private_services import PrivatePostgres, PrivateRedis  # noqa: E402


def tiny_service_inputs(workdir: Path) -> tuple[Path, dict[str, str]]:
    """The tiny models (the tests' cache) and a gallery built with them: what the real service needs."""
    from benchmarks.common import QUICK_IDENTIFY_CALIBRATION
    from inference.factory import build_models
    from inference.gallery_build import build_gallery
    from inference.settings import ModelSettings, default_text_model
    from tests.conftest import cached_build
    from tests.factories import write_gallery_folder
    from tests.fixtures_gallery import GALLERY_SIZE
    from tests.model_factories import TINY_CLIP_ARCH, cache_key, make_tiny_clip, make_tiny_llava

    models_dir = Path(os.environ.get("ARTMATCH_TEST_MODELS", Path(tempfile.gettempdir()) / "artmatch-test-models"))
    root = models_dir / cache_key()
    clip = cached_build(root, "clip", make_tiny_clip)
    settings: dict[str, Any] = {
        "clip_arch": TINY_CLIP_ARCH,
        "clip_weights": str(clip / f"{TINY_CLIP_ARCH}.pt"),
        "clip_config": clip / f"{TINY_CLIP_ARCH}.json",
        "text_model": default_text_model(),
        "llava_path": str(cached_build(root, "llava", make_tiny_llava)),
        "quantization": "none",
        "device": "cpu",
        "max_new_tokens": 8,
        "translation_models": {},  # the default opus-mt is not downloaded here, and no scenario translates
    }
    models = build_models(ModelSettings(**settings))
    models.load()
    images, metadata = write_gallery_folder(workdir / "gallery-src", GALLERY_SIZE)
    gallery = workdir / "gallery"
    quick = QUICK_IDENTIFY_CALIBRATION  # the threshold is not what these scenarios test
    build_gallery(images, gallery, models, metadata, batch_size=8, progress=False, identify_calibration=quick)
    env = {f"INFERENCE_{key.upper()}": json.dumps(v) if isinstance(v, dict) else str(v) for key, v in settings.items()}
    # Floors off, as in the tests' services (tests/conftest.py): over random tiny models they empty the sets the
    # scenarios count as answers.
    return gallery, {**env, "INFERENCE_RELEVANCE_FLOOR": "false"}


async def run_scenario(name: str, users: int, workdir: Path, service: tuple[Path, dict[str, str]] | None) -> dict:
    """One scenario on fresh servers; its counts, the invariants it broke, and its wall time."""
    scenario_dir = workdir / name
    scenario_dir.mkdir()
    timings = Timings(photo_deadline_s=120, press_deadline_s=30, settle_s=60)
    started = time.monotonic()
    with PrivatePostgres(scenario_dir) as postgres, PrivateRedis(scenario_dir) as redis:
        servers = Servers(postgres, redis, scenario_dir, timings=timings)
        if service is not None:
            servers.gallery, servers.model_env = service
        counts = await SCENARIOS[name](servers, users)
    result = counts.as_json()
    result["problems"] = counts.problems(**EXPECTATIONS[name])
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    result["log"] = Path(counts.log).name
    return result


async def main(args: argparse.Namespace) -> dict[str, Any]:
    names = [n for n in args.scenarios.split(",") if n]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    workdir.chmod(0o755)  # the private Postgres runs as `postgres` under root and must reach its folder
    service = await asyncio.to_thread(tiny_service_inputs, workdir) if "inference_restart" in names else None
    results: dict[str, Any] = {}
    for name in names:
        print(f"{name}: {args.users} users ...", file=sys.stderr, flush=True)
        results[name] = await run_scenario(name, args.users, workdir, service)
        summary = {k: results[name][k] for k in ("wall_seconds", "presses", "lost_after_saved", "problems")}
        print(f"{name}: {json.dumps(summary, ensure_ascii=False)}", file=sys.stderr, flush=True)
    bot_root = os.environ.get("ARTMATCH_BOT_ROOT", str(ROOT))
    return {"users": args.users, "bot_root": bot_root, "logs": str(workdir), "scenarios": results}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list; default all")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "faults.json")
    parser.add_argument(
        "--bot-root",
        type=Path,
        help="run the bot of another checkout (e.g. the previous release) under the same faults",
    )
    arguments = parser.parse_args()
    if arguments.bot_root is not None:
        os.environ["ARTMATCH_BOT_ROOT"] = str(arguments.bot_root.resolve())
    report = asyncio.run(main(arguments))
    arguments.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({n: r["problems"] for n, r in report["scenarios"].items()}, indent=2, ensure_ascii=False))
