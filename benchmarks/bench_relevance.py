"""Relevance floors on real paintings: the floors a build stores, and how many top-k hits they keep.

Builds a gallery from ../shared/gallery with every `--hold-out`-th painting left out, then asks each recommender
for the top k of the held-out paintings (works the gallery does not have) and of gallery works themselves, and
counts the hits at or above the floors. With random CLIP weights and the tiny random LLaVA (the only models
here) this is a smoke test of the mechanism, not a measure of quality: real weights are needed for that.

    python -m benchmarks.bench_relevance [--hold-out 6] [--k 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import ROOT, SHARED_GALLERY, model_settings
from inference import recommenders as registry
from inference.factory import build_models
from inference.gallery_build import build_gallery
from inference.gallery_store import Gallery
from inference.models import Models
from inference.recommenders import Query
from inference.settings import ModelSettings

NAMES = ("by_look", "by_meaning", "by_text_clip", "fused")


def split(workdir: Path, hold_out: int) -> tuple[Path, Path, list[Path]]:
    """Gallery folder (links) + metadata, and the held-out paintings."""
    folder = workdir / "relevance-gallery"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with (SHARED_GALLERY / "metadata.csv").open(newline="") as source:
        rows = list(csv.DictReader(source))
    held: list[Path] = []
    for n, row in enumerate(rows):
        path = (SHARED_GALLERY / row["file"]).resolve()
        if n % hold_out == 0:
            held.append(path)
        else:
            (folder / path.name).symlink_to(path)
    return folder, SHARED_GALLERY / "metadata.csv", held


def queries(models: Models, paths: list[Path]) -> list[Query]:
    images = [Image.open(path).convert("RGB") for path in paths]
    descriptions = models.describer.describe(images)
    image_vectors = models.clip.embed_images(images)
    text_vectors = models.text.embed_texts(descriptions)
    clip_text_vectors = models.clip.embed_texts(descriptions)
    return [
        Query(image_vector=i, description=d, text_vector=t, clip_text_vector=c)
        for i, d, t, c in zip(image_vectors, descriptions, text_vectors, clip_text_vectors, strict=True)
    ]


def kept(gallery: Gallery, asked: list[Query], k: int) -> dict[str, dict[str, float]]:
    """Per recommender: mean hits kept out of k, and the share of empty sets."""
    out = {}
    for name in NAMES:
        counts = np.array([len(registry.get(name).recommend(query, gallery, k)) for query in asked])
        out[name] = {"mean_kept": round(float(counts.mean()), 2), "empty_share": round(float((counts == 0).mean()), 3)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold-out", type=int, default=6, help="every n-th painting is a held-out query")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "relevance.json")
    args = parser.parse_args()
    if not (SHARED_GALLERY / "metadata.csv").is_file():
        raise SystemExit(f"no shared gallery at {SHARED_GALLERY}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = build_models(ModelSettings(**model_settings(args.workdir)))  # type: ignore[arg-type]
    models.load()
    folder, metadata, held = split(args.workdir, args.hold_out)
    out = args.workdir / "relevance-built"  # resumable: a rerun reuses the descriptions of finished batches
    # identification is not measured here: the fewest calibration photos the build takes
    build_gallery(folder, out, models, metadata_csv=metadata, progress=False, identify_calibration=8)
    gallery = Gallery.load(out)
    floors = gallery.manifest.relevance or {}
    own = sorted(folder.iterdir())[: len(held)]
    result = {
        "source": "shared/gallery (real paintings)",
        "models": "CLIP ViT-B-32 (random weights), all-MiniLM-L6-v2, tiny random LLaVA-Next: a smoke test only",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "gallery_works": len(gallery),
        "k": args.k,
        "floors": {space: floor.to_dict() for space, floor in floors.items()},
        "held_out_queries": {"count": len(held), **kept(gallery, queries(models, held), args.k)},
        "gallery_work_queries": {"count": len(own), **kept(gallery, queries(models, own), args.k)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    main()
