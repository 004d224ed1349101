"""Shared set-up of the benchmarks: benchmark-sized models built locally (no hub), photos, percentiles."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from inference.settings import default_text_model  # noqa: E402
from tests.factories import write_gallery_folder  # noqa: E402
from tests.model_factories import (  # noqa: E402
    cache_key,
    make_clip_weights,
    make_tiny_llava,
    make_tiny_xlmr_tokenizer,
)

SHARED_GALLERY = ROOT.parent / "shared" / "gallery"
# Calibration photos for galleries of benchmarks that do not measure identification: the build's default (200)
# would spend minutes on a threshold nobody reads; bench_identify and bench_look_identify calibrate in earnest.
QUICK_IDENTIFY_CALIBRATION = 8


def model_settings(workdir: Path, max_new_tokens: int = 32) -> dict[str, object]:
    """ViT-B-32-sized CLIP with random weights (same compute as real ones), the real MiniLM, and the tiny
    LLaVA-Next (a 7B describer does not run on a 2-core CPU; its GPU cost is measured separately)."""
    clip_dir = workdir / "clip"
    weights = clip_dir / "ViT-B-32-random.pt"
    if not weights.is_file():
        make_clip_weights(clip_dir, "ViT-B-32")
    return {"clip_arch": "ViT-B-32", "clip_weights": str(weights), **_other_models(workdir, max_new_tokens)}


def _other_models(workdir: Path, max_new_tokens: int) -> dict[str, object]:
    """Everything but CLIP: the real MiniLM, the tiny LLaVA-Next (cached in `workdir`), CPU, no translators."""
    llava_dir = workdir / "llava"
    if not (llava_dir / "config.json").is_file():
        make_tiny_llava(llava_dir)
    return {
        "text_model": default_text_model(),
        "llava_path": str(llava_dir),
        "quantization": "none",
        "device": "cpu",
        "max_new_tokens": max_new_tokens,
        "translation_models": {},  # opus-mt is not downloaded here; bench_translate measures it on its own
    }


MULTILINGUAL_CLIP_ARCH = "xlm-roberta-base-ViT-B-32"
# xlm-roberta-base's own config.json: the real text tower's size (278 M parameters, 192 M of them the embedding
# table). `XLMRobertaConfig()`'s defaults are BERT's (vocabulary 30 522, 512 positions, 2 token types), so each
# value is spelled out.
XLMR_BASE_CONFIG: dict[str, Any] = {
    "vocab_size": 250_002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
MULTILINGUAL_TOKENIZER_NOTE = (
    "the tokenizer is the tests' XLMRobertaTokenizer over a sentencepiece model trained on the fly "
    "(tests/model_factories.make_tiny_xlmr_tokenizer; the real 250 002-piece model is on no reachable registry): "
    "token ids differ from xlm-roberta-base's, but every text is padded or cut to the tower's 77 tokens, so the "
    "compute per query is the same"
)


def make_multilingual_clip(root: Path) -> tuple[Path, Path]:
    """(weights, text tower directory) of open_clip's built-in `xlm-roberta-base-ViT-B-32` at its real size with
    random weights (the compute of the real model): the ViT-B/32 image tower and a 12-layer XLM-RoBERTa-base text
    tower, mean pooled. The directory holds xlm-roberta-base's config.json and the tests' tokenizer, and is what
    INFERENCE_CLIP_TOKENIZER points at, as a deployment points it at its copy of xlm-roberta-base."""
    import open_clip
    import torch
    from transformers import XLMRobertaConfig

    text_dir = make_tiny_xlmr_tokenizer(root / "xlm-roberta-base")
    XLMRobertaConfig(**XLMR_BASE_CONFIG).save_pretrained(text_dir)
    config = open_clip.get_model_config(MULTILINGUAL_CLIP_ARCH)
    text_cfg = {
        **config["text_cfg"],
        "hf_model_name": str(text_dir),
        "hf_tokenizer_name": str(text_dir),
        "hf_model_pretrained": False,  # random init from config.json: no base weights to load
    }
    torch.manual_seed(0)
    model = open_clip.create_model(MULTILINGUAL_CLIP_ARCH, pretrained=None, text_cfg=text_cfg)
    weights = root / f"{MULTILINGUAL_CLIP_ARCH}-random.pt"
    torch.save(model.state_dict(), weights)
    return weights, text_dir


def multilingual_model_settings(workdir: Path, max_new_tokens: int = 32) -> dict[str, object]:
    """The default CLIP (`xlm-roberta-base-ViT-B-32`) at its real size with random weights, the real MiniLM and the
    tiny LLaVA-Next. The CLIP is built once into `workdir` (a scratch folder renamed into place, so an interrupted
    build is never used) and about 1.5 GB on disk."""
    target = workdir / f"clip-xlmr-base-{cache_key()}"
    if not (target / ".complete").is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".clip-xlmr-base-", dir=workdir))
        try:
            make_multilingual_clip(scratch)
            (scratch / ".complete").write_text("ok\n")
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "clip_arch": MULTILINGUAL_CLIP_ARCH,
        "clip_weights": str(target / f"{MULTILINGUAL_CLIP_ARCH}-random.pt"),
        "clip_tokenizer": str(target / "xlm-roberta-base"),
        **_other_models(workdir, max_new_tokens),
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


def shared_paintings(folder: Path, count: int) -> list[Path]:
    """The first `count` paintings of a gallery folder laid out as ../shared/gallery is (metadata.csv + files)."""
    import csv

    with (folder / "metadata.csv").open(newline="") as source:
        files = [folder / row["file"] for row in csv.DictReader(source)]
    return [path for path in files if path.is_file()][:count]


def gallery_of_paintings(
    workdir: Path,
    metadata: Path | None,
    paintings: list[Path],
    settings: dict[str, object],
    identify_calibration: int = QUICK_IDENTIFY_CALIBRATION,
) -> Path:
    """The gallery of these paintings (with their metadata CSV, if any), built once per size and format and reused
    while its format is current; identification is calibrated quickly unless the benchmark measures it."""
    from inference.factory import build_models
    from inference.gallery_build import build_gallery
    from inference.gallery_store import FORMAT_VERSION
    from inference.settings import ModelSettings

    out = workdir / f"gallery-{len(paintings)}"
    manifest = out / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text()).get("format") == FORMAT_VERSION:
        return out
    shutil.rmtree(out, ignore_errors=True)
    subset = workdir / f"subset-{len(paintings)}"
    shutil.rmtree(subset, ignore_errors=True)
    subset.mkdir(parents=True)
    for path in paintings:
        (subset / path.name).symlink_to(path.resolve())
    models = build_models(ModelSettings(**settings))  # type: ignore[arg-type]
    models.load()
    report = build_gallery(subset, out, models, metadata, identify_calibration=identify_calibration, progress=True)
    print(report.summary())  # noqa: T201 - the benchmark's output
    return out
