"""Latency of the inference service on this machine: time to the visual set and to the full answer.

A gallery of `--gallery-size` (default 10 000) vectors, ViT-B-32-sized CLIP (random weights cost the same compute),
the real MiniLM and the tiny LLaVA-Next describer; the service runs as its own process (`python -m inference.serve`)
and the client calls /v1/look and /v1/analyze concurrently, exactly as the bot does. Identification is off
(INFERENCE_IDENTIFY=false): padding vectors have no images to identify, and bench_look_identify measures what
identification adds to /v1/look on a gallery that has them.

    python benchmarks/bench_analyze.py --requests 40
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from benchmarks.common import QUICK_IDENTIFY_CALIBRATION, ROOT, model_settings, percentiles, photo_folder
from inference.factory import build_models
from inference.gallery_build import build_gallery
from inference.gallery_store import IDENTIFY_DIR, Artwork, Gallery, GalleryMismatchError, ModelIdentity, build_index
from inference.settings import ModelSettings

TOKEN = "bench-token"


def big_gallery(workdir: Path, settings: dict[str, object], size: int) -> Path:
    """Build a real gallery from a few images, then pad it with random vectors to `size` entries."""
    images, metadata, _ = photo_folder(workdir, 24)
    small = workdir / "small-gallery"
    models = build_models(ModelSettings(**settings))  # type: ignore[arg-type]
    manifest_path = small / "manifest.json"
    if manifest_path.is_file() and not _usable(small, models.identity().normalised()):
        shutil.rmtree(small)  # built by other models, an older naming or an older format: rebuild
    if not manifest_path.is_file():
        files = sorted(images.glob("*.jpg"))[:24]
        subset = workdir / "subset"
        subset.mkdir(exist_ok=True)
        for path in files:
            target = subset / path.name
            if not target.exists():
                target.symlink_to(path)
        build_gallery(subset, small, models, progress=False, identify_calibration=QUICK_IDENTIFY_CALIBRATION)
    gallery = Gallery.load(small)
    rng = np.random.default_rng(0)
    real = len(gallery)
    extra = size - real
    image_vectors = np.vstack(
        [gallery.image_index.reconstruct_n(0, real), rng.standard_normal((extra, gallery.image_index.d))]
    )
    text_vectors = np.vstack(
        [gallery.text_index.reconstruct_n(0, real), rng.standard_normal((extra, gallery.text_index.d))]
    )
    artworks = list(gallery.artworks) + [
        Artwork(id=i, file=f"pad/{i}.jpg", sha256=f"{i:064x}", title=f"Padding {i}") for i in range(real, size)
    ]
    out = workdir / "gallery"
    manifest = gallery.manifest
    manifest.count = size
    big = Gallery(out, manifest, artworks, build_index(image_vectors), build_index(text_vectors))
    big.save()
    (out / "images").mkdir(exist_ok=True)
    # The small gallery's identification data, so the padded gallery loads; the service never reads it (it runs
    # with INFERENCE_IDENTIFY=false, which skips loading it and so its count check).
    shutil.rmtree(out / IDENTIFY_DIR, ignore_errors=True)
    shutil.copytree(small / IDENTIFY_DIR, out / IDENTIFY_DIR)
    return out


def _usable(gallery: Path, models: ModelIdentity) -> bool:
    """Whether a cached gallery loads and was built by these models (else it is rebuilt)."""
    try:
        return Gallery.load(gallery).manifest.models.normalised() == models
    except GalleryMismatchError:
        return False


def phone_photos(count: int) -> list[bytes]:
    """Upload-sized JPEGs (1280 px longest side, like Telegram's largest photo size)."""
    images, _, _ = photo_folder(Path(tempfile.mkdtemp()), count)
    photos = []
    for path in sorted(images.glob("*.jpg"))[:count]:
        image = Image.open(path).convert("RGB")
        image = image.resize((1280, int(1280 * image.height / image.width)))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88)
        photos.append(buffer.getvalue())
    return photos


def unique(photo: bytes, n: int) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(photo)).save(buffer, "JPEG", quality=88, comment=f"request {n}".encode())
    return buffer.getvalue()


async def measure(url: str, photos: list[bytes], requests: int, recommenders: str) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    look_ms, full_ms = [], []
    stages: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=300) as client:
        for i in range(requests + 2):
            # a distinct file each time (same pixels, another JPEG comment): no request reuses an earlier result
            photo = unique(photos[i % len(photos)], i)
            started = time.perf_counter()

            async def call(path: str, photo: bytes = photo, started: float = started) -> tuple[dict, float]:
                form = {"recommenders": recommenders} if path == "/v1/analyze" else None
                response = await client.post(path, data=form, files={"image": ("p.jpg", photo, "image/jpeg")})
                response.raise_for_status()
                return response.json(), (time.perf_counter() - started) * 1000

            (look, t_look), (full, t_full) = await asyncio.gather(call("/v1/look"), call("/v1/analyze"))
            if i < 2:
                continue  # warm-up
            look_ms.append(t_look)
            full_ms.append(t_full)
            for stage, value in full["timings_ms"].items():
                stages.setdefault(stage, []).append(value)
            for stage, value in look["timings_ms"].items():
                stages.setdefault(f"look_{stage}", []).append(value)
    return {
        "time_to_visual_set_ms": percentiles(look_ms),
        "time_to_full_answer_ms": percentiles(full_ms),
        "stages_ms": {stage: percentiles(values) for stage, values in sorted(stages.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--gallery-size", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument(
        "--recommenders", default="by_look,by_meaning", help="the arena matchup /v1/analyze is asked for"
    )
    parser.add_argument("--out", type=Path, default=None, help="default: results/analyze[_<matchup>].json")
    args = parser.parse_args()
    if args.out is None:
        suffix = "" if args.recommenders == "by_look,by_meaning" else "_" + args.recommenders.replace(",", "_")
        args.out = ROOT / "benchmarks" / "results" / f"analyze{suffix}.json"
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = model_settings(args.workdir)
    gallery = big_gallery(args.workdir, settings, args.gallery_size)
    env = {**os.environ, "INFERENCE_TOKEN": TOKEN, **{f"INFERENCE_{k.upper()}": str(v) for k, v in settings.items()}}
    env["INFERENCE_IDENTIFY"] = "false"  # see the module docstring
    port = 18765
    log = (args.workdir / "service.log").open("w")
    service = subprocess.Popen(
        [sys.executable, "-m", "inference.serve", "--gallery", str(gallery), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if service.poll() is not None:
                raise SystemExit(f"service exited; see {args.workdir / 'service.log'}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        result = asyncio.run(measure(url, phone_photos(8), args.requests, args.recommenders))
    finally:
        service.terminate()
        service.wait(20)
    result = {
        "gallery_vectors": args.gallery_size,
        "requests": args.requests,
        "recommenders": args.recommenders,
        "models": "CLIP ViT-B-32 (random weights), all-MiniLM-L6-v2, tiny LLaVA-Next (max_new_tokens=32)",
        "identification": "off (see bench_look_identify for its cost)",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        **result,
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
