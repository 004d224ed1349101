"""What identification adds to /v1/look: the same photos, the same run, identification off and on.

A gallery of `--works` real paintings from ../shared/gallery (textured synthetic ones without it), built by the
real gallery build (identification data and its calibration included) with ViT-B-32-sized CLIP of random weights
(the compute of the real model), the real MiniLM and the tiny LLaVA-Next. Photos are simulated phone photos
(inference/identify/synthetic.py, 1280 px like Telegram's largest size): half of gallery works, half of works
held out of the gallery. Three services run in this process over the same loaded models:

- `off`: INFERENCE_IDENTIFY=false (the look as before);
- `on`: identification from local features alone (what a deployment with random CLIP weights does);
- `on_fusion`: plus verification of CLIP's top INFERENCE_IDENTIFY_CLIP_CANDIDATES image hits (what a deployment
  with real CLIP weights does; here CLIP's hits are random, so this is the cost, not the benefit).

Each photo is sent to the three in turn, one request at a time, so drift of the machine hits all alike.

    python -m benchmarks.bench_look_identify [--works 150] [--photos 40]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.common import ROOT, SHARED_GALLERY, gallery_of_paintings, model_settings, percentiles
from inference.factory import build_models
from inference.gallery_store import Gallery
from inference.identify.synthetic import photograph
from inference.settings import InferenceSettings, ModelSettings
from tests.factories import textured_artwork
from tests.inference.conftest import serving

TOKEN = "bench-token"
CONFIGS: dict[str, dict[str, Any]] = {
    "off": {"identify": False},
    "on": {"identify": True, "identify_clip_candidates": 0},
    "on_fusion": {"identify": True, "identify_clip_candidates": 5},
}


def source_works(workdir: Path, count: int) -> tuple[list[Path], Path | None, str]:
    """Image files: the first `count` (+ held-out) real paintings, or textured synthetic ones."""
    metadata = SHARED_GALLERY / "metadata.csv"
    if metadata.is_file():
        with metadata.open(newline="") as source:
            files = [SHARED_GALLERY / row["file"] for row in csv.DictReader(source)]
        return [f for f in files if f.is_file()], metadata, "shared/gallery (real paintings)"
    folder = workdir / "synthetic"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count * 2):
        path = folder / f"work_{i:04d}.jpg"
        if not path.is_file():
            textured_artwork(i).save(path, quality=92)
        paths.append(path)
    return paths, None, "textured synthetic paintings"


def phone_photos(files: list[Path], gallery: Gallery, works: int, count: int) -> list[tuple[bytes, int | None]]:
    """(JPEG, the gallery id it shows or None): half of gallery works, half of works outside it."""
    rng = np.random.default_rng(20_260_101)
    ids = {artwork.file: artwork.id for artwork in gallery.artworks}
    inside = [f for f in files[:works] if f.name in ids]
    outside = files[works:] or []
    photos: list[tuple[bytes, int | None]] = []
    for i in range(count):
        use_outside = i % 2 == 1 and outside
        path = outside[(i // 2) % len(outside)] if use_outside else inside[(i // 2 * 7) % len(inside)]
        with Image.open(path) as source:
            work = np.asarray(source.convert("RGB"))
        photo = photograph(rng, work, photo_side=1280)
        photos.append((photo.jpeg, None if use_outside else ids[path.name]))
    return photos


async def measure(gallery_dir: Path, settings: dict[str, object], photos: list[tuple[bytes, int | None]]) -> dict:
    models = build_models(ModelSettings(**settings))  # type: ignore[arg-type]
    headers = {"Authorization": f"Bearer {TOKEN}"}
    looks: dict[str, list[float]] = {name: [] for name in CONFIGS}
    stages: dict[str, dict[str, list[float]]] = {name: {} for name in CONFIGS}
    verdicts: dict[str, list[tuple[int | None, int | None]]] = {name: [] for name in CONFIGS}
    async with AsyncExitStack() as stack:
        clients = {}
        for name, overrides in CONFIGS.items():
            service = InferenceSettings(
                token=TOKEN, gallery_dir=gallery_dir, relevance_floor=False, **{**settings, **overrides}
            )
            clients[name] = await stack.enter_async_context(serving(service, models))
        for i, (jpeg, truth) in enumerate([photos[0], photos[1], *photos]):
            for name, client in clients.items():
                started = time.perf_counter()
                upload = {"image": ("p.jpg", jpeg, "image/jpeg")}
                response = await client.post("/v1/look", files=upload, headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if i < 2:
                    continue  # warm-up
                body = response.json()
                looks[name].append(elapsed)
                for stage, value in body["timings_ms"].items():
                    stages[name].setdefault(stage, []).append(value)
                match = body.get("match")
                verdicts[name].append((truth, match["artwork_id"] if match else None))
            if i >= 2 and (i - 1) % 10 == 0:
                print(f"  {i - 1}/{len(photos)} photos")  # noqa: T201
    result: dict[str, Any] = {}
    for name in CONFIGS:
        pairs = verdicts[name]
        inside = [(t, m) for t, m in pairs if t is not None]
        outside = [(t, m) for t, m in pairs if t is None]
        result[name] = {
            "look_ms": {**percentiles(looks[name]), "mean": round(float(np.mean(looks[name])), 1)},
            "stages_ms": {stage: percentiles(values) for stage, values in sorted(stages[name].items())},
            "identified_correctly": round(sum(t == m for t, m in inside) / max(len(inside), 1), 3),
            "false_claims_on_outside_works": sum(m is not None for _, m in outside),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=150, help="gallery works (real paintings when present)")
    parser.add_argument("--photos", type=int, default=40, help="photos, half of them of works outside the gallery")
    parser.add_argument("--calibration", type=int, default=50, help="calibration photos at gallery build")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench-identify")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "look_identify.json")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = model_settings(args.workdir)
    files, metadata, source = source_works(args.workdir, args.works)
    gallery_dir = gallery_of_paintings(
        args.workdir, metadata, files[: args.works], settings, identify_calibration=args.calibration
    )
    gallery = Gallery.load(gallery_dir)
    photos = phone_photos(files, gallery, args.works, args.photos)
    measured = asyncio.run(measure(gallery_dir, settings, photos))
    off = measured["off"]["look_ms"]
    result = {
        "command": f"python -m benchmarks.bench_look_identify --works {args.works} --photos {args.photos}",
        "gallery_works": len(gallery),
        "source": source,
        "photos": args.photos,
        "photos_of_gallery_works": sum(1 for _, truth in photos if truth is not None),
        "models": "CLIP ViT-B-32 (random weights), all-MiniLM-L6-v2, tiny LLaVA-Next",
        "requests": "one /v1/look at a time, client-side wall time, in-process service (ASGI)",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        **measured,
        "added_by_identification_ms": {
            name: {q: round(measured[name]["look_ms"][q] - off[q], 1) for q in ("p50", "p95", "mean")}
            for name in ("on", "on_fusion")
        },
    }
    print(json.dumps(result, indent=2))  # noqa: T201
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
