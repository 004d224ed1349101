"""The CPU profile's describer (SmolVLM, an Idefics3 checkpoint) on a tiny random model of that architecture."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from inference import smolvlm_describer
from inference.factory import build_describer, build_models
from inference.models import Models
from inference.settings import InferenceSettings, ModelSettings
from inference.smolvlm_describer import DType, SmolVLMDescriber
from tests.factories import image_bytes, synthetic_artwork
from tests.inference.conftest import AUTH, serving
from tests.model_factories import SMOLVLM_TILE

PROMPT = "Describe the artwork."


@pytest.fixture(scope="module")
def describer(tiny_smolvlm_path: Path) -> SmolVLMDescriber:
    loaded = SmolVLMDescriber(tiny_smolvlm_path, PROMPT, max_new_tokens=8, dtype="float32")
    loaded.load()
    return loaded


def three_photos() -> list[Image.Image]:
    """Different sizes and aspect ratios, one larger than the checkpoint's whole 4x4 grid of tiles."""
    return [synthetic_artwork(3, (96, 80)), synthetic_artwork(4, (40, 120)), synthetic_artwork(5, (300, 200))]


def image_tokens(describer: SmolVLMDescriber, photo: Image.Image) -> int:
    inputs = describer.inputs([photo])
    return int((inputs["input_ids"] == describer._model.config.image_token_id).sum())


def test_describes_one_photo_and_a_batch_in_order(describer: SmolVLMDescriber) -> None:
    photos = three_photos()

    one = describer.describe(photos[:1])
    together = describer.describe(photos)
    alone = [describer.describe([photo])[0] for photo in photos]

    assert len(one) == 1 and one[0] and one[0] == one[0].strip()
    assert len(together) == 3 and all(text and text == text.strip() for text in together)
    assert together == alone  # each description belongs to its own photo, whatever it was batched with
    assert len(set(together)) == 3
    assert describer.describe([]) == []


def test_the_same_photo_gets_the_same_description(describer: SmolVLMDescriber) -> None:
    photo = synthetic_artwork(6)

    assert describer.describe([photo]) == describer.describe([photo.copy()])


def test_a_photo_is_one_tile_unless_more_are_asked_for(tiny_smolvlm_path: Path, describer: SmolVLMDescriber) -> None:
    """One tile is what makes a description take seconds on a CPU; the checkpoint's own setting (4 per side)
    cuts a large photo into a grid plus the whole photo, each tile as many tokens again."""
    large = synthetic_artwork(7, (300, 200))
    per_tile = image_tokens(describer, synthetic_artwork(8, (SMOLVLM_TILE, SMOLVLM_TILE)))
    finer = SmolVLMDescriber(tiny_smolvlm_path, PROMPT, max_new_tokens=4, tiles_per_side=4, dtype="float32")

    assert describer.inputs([large])["pixel_values"].shape[1] == 1
    assert image_tokens(describer, large) == per_tile
    assert finer.inputs([large])["pixel_values"].shape[1] == 4 * 3 + 1  # 300x200 -> a 4x3 grid and the whole
    assert image_tokens(finer, large) == 13 * per_tile
    assert finer.describe([large])[0]
    assert finer.name.endswith(":tiles4") and describer.name.endswith(":tiles1")


def test_bfloat16_loads_and_describes(tiny_smolvlm_path: Path) -> None:
    describer = SmolVLMDescriber(tiny_smolvlm_path, PROMPT, max_new_tokens=4, dtype="bfloat16")

    texts = describer.describe(three_photos())

    assert len(texts) == 3 and all(texts)
    assert next(describer._model.parameters()).dtype == torch.bfloat16


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no-smolvlm"):
        SmolVLMDescriber(tmp_path / "no-smolvlm", PROMPT).load()


def test_the_factory_builds_smolvlm_when_chosen(tiny_model_settings: dict[str, Any], tiny_smolvlm_path: Path) -> None:
    settings = ModelSettings(
        **{
            **tiny_model_settings,
            "llava_path": None,  # not needed by this describer
            "describer": "smolvlm",
            "smolvlm_path": str(tiny_smolvlm_path),
            "smolvlm_tiles_per_side": 2,
            "smolvlm_dtype": "float32",
        }
    )

    models = build_models(settings)

    describer = models.describer
    assert isinstance(describer, SmolVLMDescriber)
    assert describer._model is None  # built, not loaded
    assert (describer.model_path, describer.tiles_per_side, describer.max_new_tokens) == (tiny_smolvlm_path, 2, 8)
    assert models.versions()["describer"] == f"{tiny_smolvlm_path.name}:float32:tiles2"


def test_the_default_is_the_small_hub_checkpoint_on_one_tile() -> None:
    settings = ModelSettings(describer="smolvlm")

    describer = build_describer(settings, "cpu")

    assert isinstance(describer, SmolVLMDescriber)
    assert settings.smolvlm_path == "HuggingFaceTB/SmolVLM-256M-Instruct"
    assert describer.tiles_per_side == 1 and describer.dtype in {torch.float32, torch.bfloat16}
    assert describer.max_new_tokens == settings.max_new_tokens and describer.prompt == settings.prompt


@pytest.mark.parametrize(
    ("flags", "device", "wanted", "expected"),
    [
        ({"avx2", "fma"}, "cpu", "auto", "float32"),  # bf16 would be emulated: no faster, less precise
        ({"avx512f", "avx512_bf16"}, "cpu", "auto", "bfloat16"),
        ({"amx_bf16"}, "cpu", "auto", "bfloat16"),
        (set(), "cuda", "auto", "bfloat16"),
        ({"avx512_bf16"}, "cpu", "float32", "float32"),  # an explicit choice stands
        (set(), "cpu", "bfloat16", "bfloat16"),
    ],
)
def test_auto_precision_is_bf16_only_where_the_hardware_computes_in_it(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], device: str, wanted: DType, expected: str
) -> None:
    monkeypatch.setattr(smolvlm_describer, "cpu_flags", lambda: flags)

    describer = SmolVLMDescriber("unused", PROMPT, dtype=wanted, device=device)

    assert describer.dtype_name == expected and describer.name == f"unused:{expected}:tiles1"


async def test_the_service_analyzes_with_the_cpu_describer(
    monkeypatch: pytest.MonkeyPatch,
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    tiny_smolvlm_path: Path,
) -> None:
    """INFERENCE_DESCRIBER=smolvlm from the environment, through the factory, to a description in /v1/analyze."""
    monkeypatch.setenv("INFERENCE_DESCRIBER", "smolvlm")
    monkeypatch.setenv("INFERENCE_SMOLVLM_PATH", str(tiny_smolvlm_path))
    monkeypatch.setenv("INFERENCE_MAX_NEW_TOKENS", "6")
    settings = make_settings()
    describer = build_describer(settings, "cpu")
    assert isinstance(describer, SmolVLMDescriber)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    photos = [image_bytes(synthetic_artwork(seed, (120, 90))) for seed in (11, 12)]

    async with serving(settings, models) as client:
        answers = [
            await client.post("/v1/analyze", files={"image": ("p.jpg", photo, "image/jpeg")}, headers=AUTH)
            for photo in photos
        ]

    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    bodies = [answer.json() for answer in answers]
    assert all(body["description"].strip() for body in bodies)
    assert bodies[0]["description"] != bodies[1]["description"]
    assert all(body["models"]["describer"] == describer.name for body in bodies)
    assert describer.name.startswith(f"{tiny_smolvlm_path.name}:")
    assert all(body["recommendations"]["by_meaning"] for body in bodies)  # the description was embedded and searched
