"""Shared set-up of the benchmarks: benchmark-sized models built locally (no hub), photos, percentiles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from inference.settings import default_text_model  # noqa: E402
from tests.factories import write_gallery_folder  # noqa: E402
from tests.model_factories import make_clip_weights, make_tiny_llava  # noqa: E402

SHARED_GALLERY = ROOT.parent / "shared" / "gallery"
# Calibration photos for galleries of benchmarks that do not measure identification: the build's default (200)
# would spend minutes on a threshold nobody reads; bench_identify and bench_look_identify calibrate in earnest.
QUICK_IDENTIFY_CALIBRATION = 8


def model_settings(workdir: Path, max_new_tokens: int = 32) -> dict[str, object]:
    """ViT-B-32-sized CLIP with random weights (same compute as real ones), the real MiniLM, and the tiny
    LLaVA-Next (a 7B describer does not run on a 2-core CPU; its GPU cost is measured separately)."""
    clip_dir, llava_dir = workdir / "clip", workdir / "llava"
    weights = clip_dir / "ViT-B-32-random.pt"
    if not weights.is_file():
        make_clip_weights(clip_dir, "ViT-B-32")
    if not (llava_dir / "config.json").is_file():
        make_tiny_llava(llava_dir)
    return {
        "clip_arch": "ViT-B-32",
        "clip_weights": str(weights),
        "text_model": default_text_model(),
        "llava_path": str(llava_dir),
        "quantization": "none",
        "device": "cpu",
        "max_new_tokens": max_new_tokens,
        "translation_models": {},  # opus-mt is not downloaded here; bench_translate measures it on its own
    }


def photo_folder(workdir: Path, count: int) -> tuple[Path, Path | None, str]:
    """Real paintings from ../shared/gallery when present, else synthetic ones."""
    images = SHARED_GALLERY / "images"
    if images.is_dir():
        return images, SHARED_GALLERY / "metadata.csv", "shared/gallery (real paintings)"
    folder, metadata = write_gallery_folder(workdir / "synthetic", count)
    return folder, metadata, "synthetic images"


def percentiles(values: list[float]) -> dict[str, float]:
    array = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(array, 50)), 1), "p95": round(float(np.percentile(array, 95)), 1)}
