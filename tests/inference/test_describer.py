"""The LLaVA-NeXT describer on a tiny random checkpoint: batched, greedy, full precision and 4-bit NF4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from inference.describer import LlavaDescriber
from inference.factory import build_models
from inference.models import Models
from inference.settings import ModelSettings
from tests.factories import synthetic_artwork

PROMPT = "Describe the artwork."


def three_photos() -> list[Image.Image]:
    """Different sizes and aspect ratios, so LLaVA-NeXT picks different tile grids within one batch."""
    return [synthetic_artwork(3, (96, 80)), synthetic_artwork(4, (40, 120)), synthetic_artwork(5, (64, 64))]


def test_describes_a_batch_the_same_as_one_at_a_time(tiny_models: Models) -> None:
    photos = three_photos()

    together = tiny_models.describer.describe(photos)
    alone = [tiny_models.describer.describe([photo])[0] for photo in photos]

    assert len(together) == 3
    assert all(text and text == text.strip() for text in together)
    assert together == alone
    assert tiny_models.describer.describe([]) == []


def test_the_same_photo_gets_the_same_description(tiny_models: Models) -> None:
    photo = synthetic_artwork(6)

    assert tiny_models.describer.describe([photo]) == tiny_models.describer.describe([photo.copy()])


def test_nf4_loads_in_4_bit_and_describes_on_cpu(tiny_llava_path: Path) -> None:
    bitsandbytes = pytest.importorskip("bitsandbytes")
    describer = LlavaDescriber(tiny_llava_path, PROMPT, max_new_tokens=6, quantization="nf4", device="cpu")

    texts = describer.describe(three_photos())

    quantized = [m for m in describer._model.modules() if isinstance(m, bitsandbytes.nn.Linear4bit)]
    assert quantized, "no layer was quantized to 4 bit"
    assert quantized[0].weight.quant_state.quant_type == "nf4"
    assert len(texts) == 3 and all(texts)
    assert describer.name == f"{tiny_llava_path.name}:nf4"


def test_auto_quantization_means_full_precision_without_cuda(tiny_llava_path: Path) -> None:
    assert LlavaDescriber(tiny_llava_path, PROMPT, quantization="auto", device="cpu").name.endswith(":none")
    assert LlavaDescriber(tiny_llava_path, PROMPT, quantization="auto", device="cuda").name.endswith(":nf4")


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-llava"):
        LlavaDescriber(tmp_path / "no-llava", PROMPT, quantization="none").load()


def test_the_factory_needs_a_llava_path(tiny_model_settings: dict[str, Any]) -> None:
    settings = ModelSettings(**{**tiny_model_settings, "llava_path": None})

    with pytest.raises(ValueError, match="INFERENCE_LLAVA_PATH must be set"):
        build_models(settings)


def test_the_factory_builds_unloaded_models_on_the_chosen_device(tiny_model_settings: dict[str, Any]) -> None:
    models = build_models(ModelSettings(**{**tiny_model_settings, "device": "auto"}))

    describer = models.describer
    assert isinstance(describer, LlavaDescriber)
    assert describer.device == "cpu"  # no CUDA on the test machines
    assert describer._model is None
    assert models.versions()["describer"].endswith(":none")
