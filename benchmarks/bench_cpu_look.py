"""The visual set (/v1/look) on a CPU: this checkout against the previous release, side by side in one run.

    python -m benchmarks.bench_cpu_look [--works 60] [--looks 30] [--previous 744cdda]
        [--paintings ../shared/gallery] [--out benchmarks/results/cpu_look.json]

Models: open_clip's `xlm-roberta-base-ViT-B-32` at its real size with random weights (the compute of the real
model, `benchmarks.common.multilingual_model_settings`), the real MiniLM and the tiny LLaVA-Next; everything on the
CPU. Gallery: `--works` real paintings from ../shared/gallery, built once with identification data.

1. Agreement, in this process: CLIP on torch (the reference) against OpenVINO in fp32 and bf16. The same pixels
   into each runtime (cosine per photo and per text), the whole new path (the new decode, numpy preprocessing,
   OpenVINO) against the old one (full decode, bicubic shrink, open_clip's transform, torch), and retrieval: the
   top-10 gallery works of each photo and each text query, with the gallery's vectors and the query from each
   runtime, against torch's top 10. Random weights put two different photos at a cosine of about 0.7, so the
   agreement figures mean something.
2. Speed of the parts, in this process, interleaved: the image tower on one photo and the text tower on one query,
   torch and OpenVINO fp32/bf16 at 1 and 2 threads; the old decode + open_clip transform against the new decode +
   numpy preprocessing.
3. Over HTTP: the previous release (`git worktree` of `--previous`, its own `python -m inference.serve`) and this
   checkout's service, on the same gallery and models, both running; requests alternate between them (the order
   flips every round), each to a photo it has not seen (a repeated photo would time the reuse of its CLIP pass).
   Scenarios: `alone` (one /v1/look at a time), `with_analyze` (the bot's pattern: /v1/look and /v1/analyze of the
   same photo sent at once), `busy` (a /v1/look while another user's /v1/analyze runs). Identification on (the
   default), then all again with INFERENCE_IDENTIFY=false, where the visual set is the CLIP path alone. Client
   wall time, the service's own `timings_ms` per stage (p50), and each scenario's p50 over `alone`'s.

The machine is shared with other work: quote the medians and ratios of one run; the load average is recorded.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

from benchmarks.common import (
    MULTILINGUAL_TOKENIZER_NOTE,
    ROOT,
    SHARED_GALLERY,
    gallery_of_paintings,
    multilingual_model_settings,
    percentiles,
    shared_paintings,
)
from inference.clip_preprocess import ClipPreprocessor, PreprocessSpec
from inference.embedders import ClipEmbedder
from inference.identify.synthetic import photograph
from inference.images import MAX_SIDE, decode_image
from tests.service_process import ServiceProcess

TOKEN = "bench-cpu-look-token"
WARM_UP = 3
PREVIOUS = "744cdda"
TEXTS = (
    "рыцарь на белом коне",
    "бурное море ночью",
    "портрет дамы с горностаем",
    "зимний лес под снегом",
    "натюрморт с фруктами и вином",
    "stormy sea at night",
    "a knight on a white horse",
    "sunflowers in a vase",
    "portrait of an old man with a beard",
    "ships in a harbour at dawn",
)
MAX_PIXELS = 40_000_000
TOP = 10


# --- set-up -----------------------------------------------------------------------------------------------------


def phone_photos(paintings: list[Path], count: int, seed: int = 20_261_128) -> list[bytes]:
    """`count` different simulated 1280 px phone photos (JPEG) of gallery works, cycling through the works."""
    rng = np.random.default_rng(seed)
    works = []
    for path in paintings:
        with Image.open(path) as source:
            works.append(np.asarray(source.convert("RGB")))
    return [photograph(rng, works[i % len(works)], photo_side=1280).jpeg for i in range(count)]


def old_decode(data: bytes) -> Image.Image:
    """The previous release's decode: JPEG draft with a square box, then Pillow's bicubic thumbnail to MAX_SIDE."""
    with Image.open(io.BytesIO(data)) as opened:
        opened.draft("RGB", (MAX_SIDE, MAX_SIDE))
        image = opened.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC)
    return image


LOAD_SECONDS: dict[str, float] = {}
"""Start-up time of each CLIP the benchmark loaded (an export included when it was the first)."""


def clip_for(
    settings: dict[str, object], runtime: str, precision: str = "auto", threads: int | None = None
) -> ClipEmbedder:
    clip = ClipEmbedder(
        str(settings["clip_arch"]),
        str(settings["clip_weights"]),
        "cpu",
        tokenizer=str(settings["clip_tokenizer"]),
        runtime=runtime,
        precision=precision,
        threads=threads,
    )
    started = time.perf_counter()
    clip.load()
    LOAD_SECONDS.setdefault(f"{runtime}_{precision}_{threads or 'all'}t", round(time.perf_counter() - started, 1))
    return clip


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --- 1. agreement -----------------------------------------------------------------------------------------------


def rowwise_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def cosine_summary(values: np.ndarray) -> dict[str, float]:
    return {"min": round(float(values.min()), 6), "median": round(float(np.median(values)), 6)}


def top_overlap(gallery_a: np.ndarray, query_a: np.ndarray, gallery_b: np.ndarray, query_b: np.ndarray) -> dict:
    """Mean share of torch's top 10 that the other runtime's top 10 holds, and how often the first hit is the same."""
    top_a = np.argsort(-(query_a @ gallery_a.T), axis=1)[:, :TOP]
    top_b = np.argsort(-(query_b @ gallery_b.T), axis=1)[:, :TOP]
    shared = [len(set(a) & set(b)) / TOP for a, b in zip(top_a, top_b, strict=True)]
    return {
        "top10_overlap_mean": round(float(np.mean(shared)), 4),
        "top10_overlap_min": round(float(np.min(shared)), 2),
        "same_first_hit": round(float(np.mean(top_a[:, 0] == top_b[:, 0])), 4),
    }


def agreement(settings: dict[str, object], paintings: list[Path], photos: list[bytes]) -> dict[str, Any]:
    torch_clip = clip_for(settings, "torch")
    runtimes = {"fp32": clip_for(settings, "openvino", "fp32"), "bf16": clip_for(settings, "openvino", "bf16")}
    openvino = runtimes["bf16"]._openvino
    assert openvino is not None
    spec = PreprocessSpec.from_config(openvino.manifest["preprocess"])
    exact = ClipPreprocessor(spec, reducing_gap=None)
    works = [decode_image(path.read_bytes(), max_pixels=MAX_PIXELS, max_side=1280) for path in paintings]
    new_photos = [decode_image(data, max_pixels=MAX_PIXELS) for data in photos]
    old_photos = [old_decode(data) for data in photos]
    # the model's own input (open_clip's resize and crop): the same pixels reach every runtime
    same_pixels = [exact.resized(image) for image in new_photos]
    same_works = [exact.resized(image) for image in works]

    reference = torch_clip.embed_images(same_pixels)
    reference_works = torch_clip.embed_images(same_works)
    reference_texts = torch_clip.embed_texts(list(TEXTS))
    old_path = torch_clip.embed_images(old_photos)
    old_works = torch_clip.embed_images(works)
    different = reference @ reference.T
    result: dict[str, Any] = {
        "photos": len(photos),
        "gallery_works": len(works),
        "texts": len(TEXTS),
        "baseline_cosine_of_different_photos_median": round(
            float(np.median(different[~np.eye(len(reference), dtype=bool)])), 4
        ),
    }
    for name, clip in runtimes.items():
        photos_v = clip.embed_images(same_pixels)
        works_v = clip.embed_images(same_works)
        texts_v = clip.embed_texts(list(TEXTS))
        new_path = clip.embed_images(new_photos)  # the service's path: new decode, numpy preprocessing
        new_works = clip.embed_images(works)
        result[name] = {
            "same_pixels_image_cosine": cosine_summary(rowwise_cosine(photos_v, reference)),
            "text_cosine": cosine_summary(rowwise_cosine(texts_v, reference_texts)),
            "photo_search_runtime_only": top_overlap(reference_works, reference, works_v, photos_v),
            "text_search_runtime_only": top_overlap(reference_works, reference_texts, works_v, texts_v),
            "whole_path_photo_cosine_vs_previous_release": cosine_summary(rowwise_cosine(new_path, old_path)),
            "whole_path_photo_search_vs_previous_release": top_overlap(old_works, old_path, new_works, new_path),
        }
    del torch_clip, runtimes
    gc.collect()
    return result


# --- 2. the parts alone -----------------------------------------------------------------------------------------


def interleaved(runs: dict[str, Callable[[int], object]], count: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(WARM_UP + count):
        for name, run in runs.items():  # interleaved, so drift of the machine hits all alike
            started = time.perf_counter()
            run(i)
            if i >= WARM_UP:
                times[name].append((time.perf_counter() - started) * 1000)
    return {name: percentiles(values) for name, values in times.items()}


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def image_run(clip: ClipEmbedder, image: Image.Image, torch_threads_: int | None = None) -> Callable[[int], object]:
    def run(_: int) -> object:
        if torch_threads_ is None:
            return clip.embed_images([image])
        with torch_threads(torch_threads_):
            return clip.embed_images([image])

    return run


def text_run(clip: ClipEmbedder, query: str, torch_threads_: int | None = None) -> Callable[[int], object]:
    def run(_: int) -> object:
        if torch_threads_ is None:
            return clip.embed_texts([query])
        with torch_threads(torch_threads_):
            return clip.embed_texts([query])

    return run


def parts(settings: dict[str, object], photos: list[bytes], count: int) -> dict[str, Any]:
    reference = clip_for(settings, "torch")
    image = decode_image(photos[0], max_pixels=MAX_PIXELS)
    runs: dict[str, Callable[[int], object]] = {}
    for threads in (1, 2):
        runs[f"image_torch_{threads}t"] = image_run(reference, image, threads)
        runs[f"text_torch_{threads}t"] = text_run(reference, TEXTS[0], threads)
        for precision in ("fp32", "bf16"):
            clip = clip_for(settings, "openvino", precision, threads)
            runs[f"image_openvino_{precision}_{threads}t"] = image_run(clip, image)
            runs[f"text_openvino_{precision}_{threads}t"] = text_run(clip, TEXTS[0])
    towers = interleaved(runs, count)
    del runs, reference
    gc.collect()

    spec = PreprocessSpec()
    from open_clip.transform import PreprocessCfg, image_transform_v2

    transform = image_transform_v2(PreprocessCfg(**spec.to_config()), is_train=False)
    fast = ClipPreprocessor(spec)
    with torch_threads(1):  # the service's CLIP thread has one thread on this machine
        decode = interleaved(
            {
                "previous_decode_and_open_clip_transform": lambda i: transform(old_decode(photos[i % len(photos)])),
                "new_decode_and_numpy_preprocessing": lambda i: fast(
                    [decode_image(photos[i % len(photos)], max_pixels=MAX_PIXELS)]
                ),
                "previous_decode_alone": lambda i: old_decode(photos[i % len(photos)]),
                "new_decode_alone": lambda i: decode_image(photos[i % len(photos)], max_pixels=MAX_PIXELS),
            },
            count,
        )
    return {"towers_ms": towers, "decode_ms": decode, "photo": "one simulated 1280x960 phone photo (JPEG)"}


# --- 3. over HTTP -----------------------------------------------------------------------------------------------


def service_env(settings: dict[str, object], **extra: str) -> dict[str, str]:
    return {
        **{f"INFERENCE_{key.upper()}": json.dumps(v) if isinstance(v, dict) else str(v) for key, v in settings.items()},
        "INFERENCE_TOKEN": TOKEN,
        **extra,
    }


@contextmanager
def previous_release(commit: str, workdir: Path) -> Iterator[Path]:
    """A temporary `git worktree` of `commit`, removed afterwards."""
    tree = Path(tempfile.mkdtemp(prefix="previous-", dir=workdir))
    tree.rmdir()
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit], check=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


class Stats:
    def __init__(self) -> None:
        self.wall: list[float] = []
        self.stages: dict[str, list[float]] = {}
        self.analyze_wall: list[float] = []

    def add(self, wall_ms: float, body: dict[str, Any]) -> None:
        self.wall.append(wall_ms)
        for stage, value in body.get("timings_ms", {}).items():
            self.stages.setdefault(stage, []).append(value)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requests": len(self.wall),
            "look_ms": {**percentiles(self.wall), "mean": round(float(np.mean(self.wall)), 1)},
            "service_ms_p50": {stage: percentiles(v)["p50"] for stage, v in sorted(self.stages.items())},
        }
        if self.analyze_wall:
            out["analyze_ms"] = percentiles(self.analyze_wall)
        return out


async def look(client: httpx.AsyncClient, photo: bytes) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    response = await client.post("/v1/look", files={"image": ("photo.jpg", photo, "image/jpeg")})
    wall = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return wall, response.json()


async def analyze(client: httpx.AsyncClient, photo: bytes) -> float:
    started = time.perf_counter()
    response = await client.post("/v1/analyze", files={"image": ("photo.jpg", photo, "image/jpeg")})
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


async def one_request(scenario: str, client: httpx.AsyncClient, photo: bytes, other: bytes, stats: Stats) -> None:
    if scenario == "alone":
        stats.add(*await look(client, photo))
    elif scenario == "with_analyze":  # the bot: both endpoints for one photo, at once
        (wall, body), analyze_ms = await asyncio.gather(look(client, photo), analyze(client, photo))
        stats.add(wall, body)
        stats.analyze_wall.append(analyze_ms)
    else:  # busy: another user's analysis is running when this look arrives
        running = asyncio.ensure_future(analyze(client, other))
        await asyncio.sleep(0.03)  # past its decode, into its CLIP pass and description
        stats.add(*await look(client, photo))
        stats.analyze_wall.append(await running)


async def side_by_side(
    services: dict[str, ServiceProcess], scenarios: list[str], photos: list[bytes], looks: int
) -> dict[str, Any]:
    """Every scenario, requests alternating between the services (order flipped each round); a fresh photo for
    every request a service sees."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    clients = {
        name: httpx.AsyncClient(base_url=service.url, headers=headers, timeout=300)
        for name, service in services.items()
    }
    results: dict[str, Any] = {}
    cursor = 0
    try:
        for scenario in scenarios:
            stats = {name: Stats() for name in services}
            load_before = load_average()
            for round_ in range(WARM_UP + looks):
                photo, other = photos[cursor % len(photos)], photos[(cursor + 1) % len(photos)]
                cursor += 2
                order = list(services) if round_ % 2 == 0 else list(reversed(services))
                for name in order:
                    target = stats[name] if round_ >= WARM_UP else Stats()
                    await one_request(scenario, clients[name], photo, other, target)
            results[scenario] = {
                "load_average_1min_before": load_before,
                **{name: stat.summary() for name, stat in stats.items()},
            }
            names = list(services)
            if len(names) == 2:
                a, b = (results[scenario][name]["look_ms"]["p50"] for name in names)
                results[scenario][f"p50_ratio_{names[0]}_over_{names[1]}"] = round(a / b, 2)
            print(f"  {scenario}: {json.dumps(results[scenario])}")
    finally:
        for client in clients.values():
            await client.aclose()
    return results


def over_http(
    settings: dict[str, object], gallery: Path, previous: Path, photos: list[bytes], looks: int, logs: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    scenarios = ["alone", "with_analyze", "busy"]
    for identify in ("true", "false"):
        env = service_env(settings, INFERENCE_IDENTIFY=identify)
        services = {
            "previous": ServiceProcess(gallery, env, logs / f"previous-identify-{identify}.log", tree=previous),
            "this": ServiceProcess(gallery, env, logs / f"this-identify-{identify}.log"),
        }
        start_s = {}
        try:
            for name, service in services.items():
                started = time.perf_counter()
                service.start(timeout=900)
                start_s[name] = round(time.perf_counter() - started, 1)
            key = "identification_on" if identify == "true" else "identification_off"
            measured = asyncio.run(side_by_side(services, scenarios, photos, looks))
            alone = {name: measured["alone"][name]["look_ms"]["p50"] for name in services}
            results[key] = {
                "service_start_s": start_s,
                **measured,
                "slowdown_over_alone_p50": {
                    name: {
                        scenario: round(measured[scenario][name]["look_ms"]["p50"] / alone[name], 2)
                        for scenario in scenarios[1:]
                    }
                    for name in services
                },
            }
        finally:
            for service in services.values():
                service.stop()
    return results


# --- main -------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import openvino as ov

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "openvino_cpu_capabilities": ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"),
        "openvino": ov.get_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.is_available(),
        "shared": "2 cores shared with other helpers' builds and tests; see the load averages",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=60, help="gallery works (real paintings)")
    parser.add_argument("--looks", type=int, default=30, help="timed /v1/look per service and scenario")
    parser.add_argument("--parts", type=int, default=20, help="timed runs of each part in process")
    parser.add_argument("--previous", default=PREVIOUS, help="the previous release's commit")
    parser.add_argument("--paintings", type=Path, default=SHARED_GALLERY, help="folder with metadata.csv and images")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench-cpu-look")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_look.json")
    args = parser.parse_args()
    if not (args.paintings / "metadata.csv").is_file():
        print(f"skipped: no paintings at {args.paintings.resolve()} (this benchmark needs real paintings)")
        return
    load_start = load_average()
    started = datetime.now(UTC)
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = multilingual_model_settings(args.workdir)
    paintings = shared_paintings(args.paintings, args.works)
    gallery = gallery_of_paintings(args.workdir, args.paintings / "metadata.csv", paintings, settings)
    # per service process: warm-ups and timed looks of 3 scenarios, two photos a request
    photos = phone_photos(paintings, 2 * 3 * (args.looks + WARM_UP))
    print("agreement ...")
    agreed = agreement(settings, paintings, photos[:40])
    print(json.dumps(agreed, indent=1))
    print("parts ...")
    alone = parts(settings, photos, args.parts)
    print(json.dumps(alone, indent=1))
    print("over HTTP ...")
    logs = args.workdir / "logs"
    logs.mkdir(exist_ok=True)
    with previous_release(args.previous, args.workdir) as previous:
        http = over_http(settings, gallery, previous, photos, args.looks, logs)
    result = {
        "command": f"python -m benchmarks.bench_cpu_look --works {args.works} --looks {args.looks} "
        f"--parts {args.parts} --previous {args.previous}"
        + (f" --paintings {args.paintings}" if args.paintings != SHARED_GALLERY else ""),
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        "load_average_1min": {"at_start": load_start, "at_end": load_average()},
        "models": "open_clip xlm-roberta-base-ViT-B-32 at its real size with random weights (ViT-B/32 image tower, "
        "12-layer XLM-RoBERTa-base text tower), all-MiniLM-L6-v2, tiny LLaVA-Next; all on the CPU",
        "tokenizer": MULTILINGUAL_TOKENIZER_NOTE,
        "gallery_works": len(paintings),
        "photos": "simulated 1280 px phone photos (inference/identify/synthetic.py) of the gallery's works, a "
        "different one for every request a service sees",
        "previous_release": f"git commit {args.previous} in a temporary git worktree, its own service process",
        "this_service_settings": "defaults: INFERENCE_CLIP_RUNTIME=auto (OpenVINO on this CPU), "
        "INFERENCE_CLIP_PRECISION=auto, threads split by inference.threads, INFERENCE_PHOTO_CACHE_MB=64",
        "clip_load_seconds": LOAD_SECONDS,
        "agreement": agreed,
        "parts_in_process": alone,
        "over_http": http,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result["over_http"], indent=2))


if __name__ == "__main__":
    main()
