"""CLIP's preprocessing in numpy against open_clip's own transform, and the decode at the size needed (JPEG draft
mode, area shrink) against a full decode: the pixels and the vectors the fast path gives agree with today's."""

from __future__ import annotations

import io

import numpy as np
import pytest
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from inference.clip_preprocess import ClipPreprocessor, PreprocessSpec
from inference.embedders import ClipEmbedder
from inference.images import MAX_SIDE, decode_image, draft_box
from inference.models import Models
from tests.factories import image_bytes, synthetic_artwork, textured_artwork
from tests.model_factories import TinyClip

MAX_PIXELS = 40_000_000
SIZES = [(1024, 768), (768, 1024), (224, 224), (225, 224), (640, 481), (97, 41), (24, 300), (3000, 40)]


def open_clip_pixels(spec: PreprocessSpec, image: Image.Image) -> np.ndarray:
    return np.asarray(image_transform_v2(PreprocessCfg(**spec.to_config()), is_train=False)(image))


def photo(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """Texture at every scale (flat shapes would hide resampling differences)."""
    return textured_artwork(seed, max(size)).resize(size, Image.Resampling.BICUBIC)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "spec",
    [PreprocessSpec(), PreprocessSpec(size=32, interpolation="bilinear"), PreprocessSpec(resize_mode="squash")],
    ids=["openai-224", "bilinear-32", "squash"],
)
def test_exact_mode_gives_open_clips_pixels(size: tuple[int, int], spec: PreprocessSpec) -> None:
    image = photo(size)

    ours = ClipPreprocessor(spec, reducing_gap=None)([image])[0]

    np.testing.assert_allclose(ours, open_clip_pixels(spec, image), atol=1e-5)


@pytest.mark.parametrize("size", SIZES)
def test_the_fast_resize_stays_within_a_grey_level_of_open_clips(size: tuple[int, int]) -> None:
    spec = PreprocessSpec()
    image = photo(size, seed=1)

    ours = ClipPreprocessor(spec)([image])[0]
    theirs = open_clip_pixels(spec, image)

    std = np.asarray(spec.std, np.float32)[:, None, None]
    grey_levels = np.abs(ours - theirs) * std * 255.0  # back to 0..255 units
    assert ours.shape == theirs.shape == (3, 224, 224)
    assert float(grey_levels.mean()) < 1.0, float(grey_levels.mean())


def test_a_transform_it_does_not_reproduce_is_left_to_open_clip() -> None:
    spec = PreprocessSpec(size=(224, 160), resize_mode="longest")
    image = photo((500, 300))

    ours = ClipPreprocessor(spec)([image])

    assert not spec.handled_here
    np.testing.assert_array_equal(ours[0], open_clip_pixels(spec, image))


def test_greyscale_and_rgba_images_are_fed_as_rgb() -> None:
    spec = PreprocessSpec()
    for image in (photo((300, 200)).convert("L"), photo((300, 200)).convert("RGBA")):
        np.testing.assert_allclose(
            ClipPreprocessor(spec, reducing_gap=None)([image])[0], open_clip_pixels(spec, image), atol=1e-5
        )


# --- decoding at the size needed ---------------------------------------------------------------------------------


def test_a_large_jpeg_is_decoded_at_reduced_scale() -> None:
    """A 2560x1920 phone photo: draft mode decodes it at 1280x960 (a quarter of the pixels), not in full, and the
    result still has the longest side the service asks for."""
    data = image_bytes(photo((2560, 1920)), quality=90)
    with Image.open(io.BytesIO(data)) as probe:
        probe.draft("RGB", draft_box(probe.size, MAX_SIDE))
        assert probe.size == (1280, 960)
    with Image.open(io.BytesIO(data)) as square:  # a square box would have decoded it whole
        square.draft("RGB", (MAX_SIDE, MAX_SIDE))
        assert square.size == (2560, 1920)

    assert decode_image(data, max_pixels=MAX_PIXELS).size == (1024, 768)


def reference_decode(data: bytes) -> Image.Image:
    """Today's decode before this change: full decode, Pillow's bicubic thumbnail to MAX_SIDE."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC)
    return image


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_decode_and_preprocessing_give_the_vectors_of_the_reference_path(
    tiny_models: Models, tiny_xlmr_clip: TinyClip
) -> None:
    """Phone-sized JPEGs through the service's decode, the numpy preprocessing and CLIP on the default runtime,
    against a full decode, open_clip's transform and torch: the same vectors."""
    sizes = [(2560, 1920), (1280, 960), (960, 1280), (4000, 1000)]
    photos = [photo(size, seed) for seed, size in enumerate(sizes)]
    photos.append(synthetic_artwork(3, (1600, 1200)))
    uploads = [image_bytes(image, quality=85) for image in photos]
    torch_clip = ClipEmbedder(
        tiny_xlmr_clip.arch,
        str(tiny_xlmr_clip.weights),
        "cpu",
        tiny_xlmr_clip.config_json,
        tokenizer=str(tiny_xlmr_clip.tokenizer),
        runtime="torch",
    )

    fast = tiny_models.clip.embed_images([decode_image(data, max_pixels=MAX_PIXELS) for data in uploads])
    reference = torch_clip.embed_images([reference_decode(data) for data in uploads])

    agreement = cosines(fast, reference)
    assert agreement.min() >= 0.998, agreement
