"""CLIP (a tiny random open_clip ViT) and the real all-MiniLM-L6-v2: the vectors the gallery search relies on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.embedders import ClipEmbedder, SentenceEmbedder
from inference.models import Models
from tests.factories import synthetic_artwork
from tests.model_factories import TINY_CLIP_CONFIG, TinyClip


def assert_unit_rows(vectors: np.ndarray) -> None:
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_clip_gives_the_same_image_the_same_vector_and_different_images_different_ones(
    tiny_models: Models,
) -> None:
    painting, other = synthetic_artwork(1), synthetic_artwork(2)

    vectors = tiny_models.clip.embed_images([painting, painting.copy(), other])

    assert vectors.shape == (3, TINY_CLIP_CONFIG["embed_dim"])
    assert_unit_rows(vectors)
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert float(vectors[0] @ vectors[2]) < 0.999


def test_clip_vectors_do_not_depend_on_the_batch(tiny_models: Models) -> None:
    images = [synthetic_artwork(seed) for seed in range(5)]

    together = tiny_models.clip.embed_images(images)
    alone = np.concatenate([tiny_models.clip.embed_images([image]) for image in images])

    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_clip_embeds_texts_into_the_image_space(tiny_models: Models) -> None:
    vectors = tiny_models.clip.embed_texts(["a stormy sea", "a portrait of a woman"])

    assert vectors.shape == (2, tiny_models.clip.dim)
    assert_unit_rows(vectors)
    assert tiny_models.clip.embed_texts([]).shape == (0, tiny_models.clip.dim)


def test_clip_text_vectors_tell_texts_apart_and_truncate_long_descriptions(tiny_models: Models) -> None:
    texts = ["a stormy sea at night", "a portrait of a woman in red", "a stormy sea at night"]
    long_description = "An oil painting of a harbour at dawn, boats and gulls, soft pink light. " * 60

    vectors = tiny_models.clip.embed_texts([*texts, long_description])
    alone = tiny_models.clip.embed_texts([texts[1]])

    assert vectors.shape == (4, TINY_CLIP_CONFIG["embed_dim"])
    assert_unit_rows(vectors)
    assert float(vectors[0] @ vectors[1]) < 0.999
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)
    np.testing.assert_allclose(vectors[1], alone[0], atol=1e-5)
    assert float(vectors[3] @ vectors[0]) < 0.999


def test_clip_knows_its_size_before_loading_the_weights(tiny_clip: TinyClip) -> None:
    clip = ClipEmbedder(tiny_clip.arch, str(tiny_clip.weights), "cpu", config_json=tiny_clip.config_json)

    assert clip.dim == TINY_CLIP_CONFIG["embed_dim"]
    assert clip.name == tiny_clip.arch and clip.weights == str(tiny_clip.weights)


def test_clip_refuses_weights_that_are_not_a_local_file() -> None:
    # A pretrained tag such as this one would make open_clip download the weights.
    with pytest.raises(FileNotFoundError, match="not a local file"):
        ClipEmbedder("ViT-B-32", "laion2b_s34b_b79k", "cpu")


def test_clip_names_an_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown open_clip architecture 'no-such-vit'"):
        _ = ClipEmbedder("no-such-vit", None, "cpu").dim


def test_minilm_puts_related_descriptions_closer_together(tiny_models: Models) -> None:
    ship, seascape, fruit = tiny_models.text.embed_texts(
        ["a painting of a ship at sea", "a seascape with a sailing boat", "a bowl of fruit on a table"]
    )

    assert float(ship @ seascape) > float(ship @ fruit) + 0.2


def test_minilm_vectors_are_normalised_384_floats(tiny_models: Models, minilm_path: str) -> None:
    vectors = tiny_models.text.embed_texts(["Impressionist landscape, soft light", "Cubist still life"])

    assert tiny_models.text.name == minilm_path
    assert tiny_models.text.dim == 384
    assert vectors.shape == (2, 384)
    assert_unit_rows(vectors)
    assert tiny_models.text.embed_texts([]).shape == (0, 384)


def test_sentence_embedder_loads_only_local_models(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        SentenceEmbedder(str(tmp_path / "no-such-model"), "cpu").load()
