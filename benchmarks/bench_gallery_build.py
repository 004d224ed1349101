"""Gallery build throughput: the batched build against a naive one-image-at-a-time loop of the same models.

ViT-B-32-sized CLIP (random weights), the real MiniLM and the tiny LLaVA-Next describer, on real paintings from
../shared/gallery when present (else synthetic images). Both builds calibrate identification on the same few
photos (QUICK_IDENTIFY_CALIBRATION): a fixed cost per build, not per image, that would blur the comparison.

    python -m benchmarks.bench_gallery_build --images 48 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

from benchmarks.common import QUICK_IDENTIFY_CALIBRATION, ROOT, model_settings, photo_folder
from inference.factory import build_models
from inference.gallery_build import build_gallery
from inference.settings import ModelSettings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gallery_build.json")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = build_models(ModelSettings(**model_settings(args.workdir)))  # type: ignore[arg-type]
    models.load()
    source, _, source_name = photo_folder(args.workdir, args.images)
    subset = args.workdir / "build-subset"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir()
    for path in sorted(source.glob("*.jpg"))[: args.images]:
        (subset / path.name).symlink_to(path)

    # warm-up (first torch calls allocate and pick kernels), so neither run pays it
    warm = args.workdir / "built-warmup"
    shutil.rmtree(warm, ignore_errors=True)
    calibration = QUICK_IDENTIFY_CALIBRATION
    build_gallery(subset, warm, models, batch_size=args.batch_size, progress=False, identify_calibration=calibration)
    runs = {}
    for name, batch_size in (("naive", 1), ("batched", args.batch_size)):  # naive = build_gallery_naive's batch 1
        out = args.workdir / f"built-{name}"
        shutil.rmtree(out, ignore_errors=True)
        report = build_gallery(
            subset, out, models, batch_size=batch_size, progress=False, identify_calibration=calibration
        )
        runs[name] = {"images": report.processed, "seconds": round(report.seconds, 2),
                      "images_per_s": round(report.images_per_second, 2)}
    result = {
        "source": source_name,
        "batch_size": args.batch_size,
        "models": "CLIP ViT-B-32 (random weights), all-MiniLM-L6-v2, tiny LLaVA-Next",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        **runs,
        "speedup": round(runs["batched"]["images_per_s"] / runs["naive"]["images_per_s"], 2),
    }
    print(json.dumps(result, indent=2))
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
