"""Adding works to a built gallery against rebuilding it with them, and removing works.

The same models as bench_gallery_build (ViT-B-32-sized CLIP with random weights, the real MiniLM, the tiny LLaVA-Next
describer), on real paintings from ../shared/gallery when present (else synthetic images). A gallery of `--base`
works is built, then `--add` more are added in two halves (the first add also embeds the tagger's label prompts and
caches them in the gallery; the second is the steady state); the rebuild builds all of them from scratch,
calibrating identification on the same few photos as the build (QUICK_IDENTIFY_CALIBRATION; the default 200 would
add minutes to every rebuild and make the comparison look better for adding than it is).

    python -m benchmarks.bench_gallery_add --base 40 --add 8
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import QUICK_IDENTIFY_CALIBRATION, ROOT, model_settings, photo_folder
from inference.factory import build_models
from inference.gallery_build import build_gallery
from inference.gallery_edit import add_to_gallery, remove_from_gallery
from inference.ingest import from_folder_tree
from inference.settings import ModelSettings


def _subset(source: list[Path], folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path in source:
        (folder / path.name).symlink_to(path)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=int, default=40)
    parser.add_argument("--add", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gallery_add.json")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    models = build_models(ModelSettings(**model_settings(args.workdir)))  # type: ignore[arg-type]
    models.load()
    source, _, source_name = photo_folder(args.workdir, args.base + args.add)
    files = sorted(source.glob("*.jpg"))[: args.base + args.add]
    base = _subset(files[: args.base], args.workdir / "add-base")
    half = args.base + args.add // 2
    first = _subset(files[args.base : half], args.workdir / "add-first")
    second = _subset(files[half:], args.workdir / "add-second")
    everything = _subset(files, args.workdir / "add-all")
    common = {"batch_size": args.batch_size, "progress": False}
    calibration = QUICK_IDENTIFY_CALIBRATION

    gallery = args.workdir / "add-gallery"
    shutil.rmtree(gallery, ignore_errors=True)
    build_gallery(base, gallery, models, identify_calibration=calibration, **common)  # also warms the models up

    # The first add embeds the tagger's label prompts (cached in the gallery for later adds), the second reuses them.
    start = time.perf_counter()
    cold = add_to_gallery(gallery, from_folder_tree(first), models, **common)
    cold_seconds = time.perf_counter() - start
    start = time.perf_counter()
    added = add_to_gallery(gallery, from_folder_tree(second), models, **common)
    add_seconds = time.perf_counter() - start

    rebuilt = args.workdir / "add-rebuilt"
    shutil.rmtree(rebuilt, ignore_errors=True)
    start = time.perf_counter()
    report = build_gallery(everything, rebuilt, models, identify_calibration=calibration, **common)
    rebuild_seconds = time.perf_counter() - start

    start = time.perf_counter()
    remove_from_gallery(gallery, ids=[0, 1])
    remove_seconds = time.perf_counter() - start

    result = {
        "source": source_name,
        "models": "CLIP ViT-B-32 (random weights), all-MiniLM-L6-v2, tiny LLaVA-Next",
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "base_works": args.base,
        "first_add_works": cold.count,
        "first_add_seconds": round(cold_seconds, 2),
        "added_works": added.count,
        "add_seconds": round(add_seconds, 2),
        "add_seconds_per_added_work": round(add_seconds / max(added.count, 1), 3),
        "add_model_seconds": round(added.seconds, 2),
        "add_model_seconds_per_work": round(added.seconds / max(added.count, 1), 3),
        "rebuild_model_seconds_per_work": round(report.seconds / max(report.processed, 1), 3),
        "rebuild_works": report.count,
        "rebuild_seconds": round(rebuild_seconds, 2),
        "rebuild_identify_seconds": report.identify.get("seconds"),
        "rebuild_seconds_per_work": round(rebuild_seconds / max(report.count, 1), 3),
        "rebuild_over_add": round(rebuild_seconds / add_seconds, 1),
        "remove_2_seconds": round(remove_seconds, 2),
        "calibration_photos": calibration,
    }
    print(json.dumps(result, indent=2))  # noqa: T201
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
