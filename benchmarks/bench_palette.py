"""Palettes and search by colour: extraction time per image at build, and `/v1/search/color`'s ranking time as
the gallery grows; with the quality of the ranking on the real paintings, checked against their own pixels.

1. Extraction: every painting of ../shared/gallery decoded as the build decodes it (longest side 1280 px), then
   `extract_palette` timed alone (downscale to 96 px, Lab, k-means with 3 restarts).
2. Search over the real palettes and over synthetic galleries of 10 k, 100 k and 1 M palettes drawn from the
   real ones (each colour jittered by ~6 ΔE, weights redrawn around the real ones), so the sizes have the colour
   structure of paintings; named query colours. Both paths of `colour_index.ColourIndex`: exact scoring of
   every palette (the service's choice up to EXACT_MAX works) and the IVF index of soft Lab histograms with
   exact re-scoring (above it), with its build time, memory and recall@10 against exact.
3. Quality: for a few colours, the share of pixels within ΔE 25 of the colour (Pillow's LittleCMS Lab, not
   `inference.palette`) in the top 5 works, against the gallery's median work and the best 5 possible.

    python -m benchmarks.bench_palette [--sizes 10000 100000 1000000] [--queries 40]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from benchmarks.common import ROOT, SHARED_GALLERY
from inference.colour_index import EXACT_MAX, ColourIndex
from inference.images import decode_image
from inference.palette import FEATURE_ANCHORS, best_matches, colour_names, extract_palette, parse_colour
from inference.vector_index import IndexSettings

RESULTS = ROOT / "benchmarks" / "results" / "palette.json"
QUALITY_COLOURS = ("deep blue", "красный", "ochre", "зелёный", "white", "black", "золотой", "#4a6fa5")
NEAR = 25.0


def _ms(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {
        "mean": round(float(array.mean()), 2),
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
        "p99": round(float(np.percentile(array, 99)), 2),
    }


def load_paintings() -> list[Image.Image]:
    with (SHARED_GALLERY / "metadata.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    return [
        decode_image((SHARED_GALLERY / row["file"]).read_bytes(), max_pixels=40_000_000, max_side=1280) for row in rows
    ]


def extraction(images: list[Image.Image]) -> tuple[np.ndarray, dict[str, object]]:
    palettes, seconds = [], []
    for image in images:
        start = time.perf_counter()
        palettes.append(extract_palette(image))
        seconds.append(time.perf_counter() - start)
    return np.stack(palettes), {"images": len(images), "ms_per_image": _ms(seconds)}


def synthetic(real: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` palettes like the real ones: a real palette's colours jittered, its weights redrawn around it."""
    picked = real[rng.integers(0, len(real), size)]
    colours = picked[..., :3] + rng.normal(0.0, 6.0, picked[..., :3].shape).astype(np.float32)
    weights = np.stack([rng.dirichlet(50 * row + 0.05) for row in picked[..., 3]]) if size <= 20_000 else None
    if weights is None:  # vectorised Dirichlet: normalised gammas
        gammas = rng.standard_gamma(50 * picked[..., 3] + 0.05).astype(np.float32)
        weights = gammas / gammas.sum(axis=1, keepdims=True)
    order = np.argsort(-weights, axis=1)
    palettes = np.concatenate([colours, weights[..., None]], axis=2).astype(np.float32)
    return np.take_along_axis(palettes, order[..., None], axis=1)


def search(palettes: np.ndarray, queries: list[np.ndarray], k: int = 10) -> dict[str, object]:
    """Exact scoring of every palette (what the service runs up to EXACT_MAX works)."""
    best_matches(palettes, queries[0], k)  # warm
    seconds = []
    for lab in queries:
        start = time.perf_counter()
        best_matches(palettes, lab, k)
        seconds.append(time.perf_counter() - start)
    return {"works": len(palettes), "mode": "exact", "mb": round(palettes.nbytes / 2**20, 1), "ms": _ms(seconds)}


def indexed(palettes: np.ndarray, queries: list[np.ndarray], k: int = 10) -> dict[str, object]:
    """The index path (what the service runs above EXACT_MAX), forced at any size: build time, memory, latency,
    and recall@10 against exact scoring."""
    start = time.perf_counter()
    colours = ColourIndex.build(palettes, exact_max=0, settings=IndexSettings(exact_search_max=0))
    build_s = time.perf_counter() - start
    assert colours.index is not None
    colours.search(queries[0], k)  # warm
    seconds, recalls = [], []
    for lab in queries:
        start = time.perf_counter()
        ids, _ = colours.search(lab, k)
        seconds.append(time.perf_counter() - start)
        truth, _ = best_matches(palettes, lab, k)
        recalls.append(len(set(truth.tolist()) & set(ids.tolist())) / k)
    return {
        "works": len(palettes),
        "mode": f"index ({colours.index.spec.describe()}), exact re-scoring of the shortlist",
        "build_s": round(build_s, 1),
        "mb": round((palettes.nbytes + len(palettes) * len(FEATURE_ANCHORS) * 4) / 2**20, 1),
        "ms": _ms(seconds),
        "recall_at_10": round(float(np.mean(recalls)), 4),
        "min_recall_at_10": round(float(np.min(recalls)), 2),
    }


_TO_LAB = ImageCms.buildTransformFromOpenProfiles(
    ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
)


def lab_pixels(image: Image.Image) -> np.ndarray:
    image = image.convert("RGB")
    image.thumbnail((200, 200))
    raw = np.asarray(ImageCms.applyTransform(image, _TO_LAB)).reshape(-1, 3)
    return np.column_stack([raw[:, 0].astype(np.float64) * 100.0 / 255.0, raw[:, 1:].view(np.int8)])


def quality(images: list[Image.Image], palettes: np.ndarray) -> dict[str, object]:
    pixels = [lab_pixels(image) for image in images]
    answers: dict[str, object] = {}
    for name in QUALITY_COLOURS:
        colour = parse_colour(name)
        target = lab_pixels(Image.new("RGB", (1, 1), colour.hex))[0]
        shares = np.array([(np.linalg.norm(p - target, axis=1) < NEAR).mean() for p in pixels])
        ids, _ = best_matches(palettes, colour.lab, 5)
        answers[name] = {
            "hex": colour.hex,
            "top5_share": round(float(shares[ids].mean()), 4),
            "best5_share": round(float(np.sort(shares)[-5:].mean()), 4),
            "median_share": round(float(np.median(shares)), 4),
            "top5_in_best10": int(len(set(ids.tolist()) & set(np.argsort(-shares)[:10].tolist()))),
        }
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument(
        "--index-sizes", type=int, nargs="*", default=[100_000, 1_000_000], help="also measure the index path"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (SHARED_GALLERY / "metadata.csv").is_file():
        raise SystemExit(f"no shared gallery at {SHARED_GALLERY}")

    load_start = [round(x, 2) for x in os.getloadavg()]
    images = load_paintings()
    real, extracted = extraction(images)
    print(f"extraction over {len(images)} paintings: {extracted['ms_per_image']} ms per image")
    rng = np.random.default_rng(0)
    names = colour_names()
    queries = [parse_colour(names[i]).lab for i in rng.integers(0, len(names), args.queries)]
    searches = [search(real, queries)]
    for size in sorted(set(args.sizes) | set(args.index_sizes)):
        palettes = synthetic(real, size, rng)
        if size in args.sizes:
            searches.append(search(palettes, queries))
            print(f"exact search over {size} palettes: {searches[-1]['ms']} ms")
        if size in args.index_sizes:
            searches.append(indexed(palettes, queries))
            print(f"index search over {size} palettes: {searches[-1]}")
        del palettes
    answers = quality(images, real)
    for name, row in answers.items():
        print(f"  {name}: {row}")
    result = {
        "machine": f"{os.cpu_count()} CPUs",
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "extraction": extracted,
        "service_exact_max": EXACT_MAX,
        "search_k10": searches,
        "quality_vs_pixels": {
            "note": f"share of a work's pixels within ΔE76 {NEAR} of the colour (LittleCMS Lab), mean over the top 5",
            "colours": answers,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
