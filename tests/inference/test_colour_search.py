"""Search by colour for real: a gallery built from ../shared/gallery's paintings, `POST /v1/search/color`, and the
hits checked against the paintings' own pixels, converted to CIELAB by Pillow's LittleCMS (not by
`inference.palette`): the top works must hold clearly more of the colour than the gallery's median work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, ImageCms

from inference.gallery_build import build_gallery
from inference.gallery_store import MANIFEST, PALETTES, Gallery, GalleryMismatchError
from inference.models import Models
from inference.settings import InferenceSettings
from tests.factories import SHARED_GALLERY, link_shared_paintings
from tests.inference.conftest import AUTH, serving

PAINTINGS = 60
NEAR = 25.0
"""ΔE within which a pixel counts as "of the colour" in the independent check."""

_TO_LAB = ImageCms.buildTransformFromOpenProfiles(
    ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB"
)


def lab_pixels(image: Image.Image) -> np.ndarray:
    """(m, 3) CIELAB of an image by LittleCMS: L stored 0..255, a and b as signed bytes."""
    image = image.convert("RGB")
    image.thumbnail((200, 200))
    raw = np.asarray(ImageCms.applyTransform(image, _TO_LAB)).reshape(-1, 3)
    return np.column_stack([raw[:, 0].astype(np.float64) * 100.0 / 255.0, raw[:, 1:].view(np.int8)])


def share_near(pixels: np.ndarray, hex_code: str) -> float:
    target = lab_pixels(Image.new("RGB", (1, 1), hex_code))[0]
    return float((np.linalg.norm(pixels - target, axis=1) < NEAR).mean())


@pytest.fixture(scope="module")
def shared_gallery(tiny_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shared-colour")
    images, _ = link_shared_paintings(folder, PAINTINGS)
    out = folder / "gallery"
    build_gallery(images, out, tiny_models, SHARED_GALLERY / "metadata.csv", progress=False, identify_calibration=3)
    return out


@pytest.fixture(scope="module")
def pixels(shared_gallery: Path) -> list[np.ndarray]:
    gallery = Gallery.load(shared_gallery)
    found = []
    for artwork in gallery.artworks:
        with Image.open(gallery.image_path(artwork.id)) as image:
            found.append(lab_pixels(image))
    return found


@pytest.fixture
async def colour_api(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, shared_gallery: Path
) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(make_settings(gallery_dir=shared_gallery), tiny_models) as client:
        yield client


@pytest.mark.gallery
@pytest.mark.parametrize(("colour", "hex_code"), [("#1a2f8a", "#1a2f8a"), ("красный", "#c62828"), ("ochre", "#cc7722")])
async def test_the_works_found_by_colour_hold_clearly_more_of_it_than_the_median_work(
    colour_api: httpx.AsyncClient, pixels: list[np.ndarray], colour: str, hex_code: str
) -> None:
    response = await colour_api.post("/v1/search/color", json={"color": colour, "k": 3}, headers=AUTH)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["query"] == hex_code
    hits = body["recommendations"]["by_colour"]
    assert len(hits) == 3
    shares = np.array([share_near(work, hex_code) for work in pixels])
    found = shares[[hit["artwork_id"] for hit in hits]]
    median, top_decile = np.median(shares), np.percentile(shares, 90)
    assert found.mean() > 3 * median + 0.02, (found, median)
    assert found[0] >= top_decile, (found, top_decile)
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
    # each hit comes with its palette, for the strip: 5 (or fewer) colours whose weights sum to 1
    assert set(body["palettes"]) == {str(hit["artwork_id"]) for hit in hits}
    for palette in body["palettes"].values():
        assert 1 <= len(palette) <= 5 and abs(sum(colour["weight"] for colour in palette) - 1) < 1e-3


@pytest.mark.gallery
async def test_an_unknown_colour_gets_a_422_with_examples_and_no_token_a_401(colour_api: httpx.AsyncClient) -> None:
    unknown = await colour_api.post("/v1/search/color", json={"color": "blurple"}, headers=AUTH)
    anonymous = await colour_api.post("/v1/search/color", json={"color": "red"})

    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_colour"
    assert "blurple" in unknown.json()["detail"] and "тёмно-синий" in unknown.json()["detail"]
    assert anonymous.status_code == 401


@pytest.mark.gallery
def test_the_stored_palettes_match_the_works(shared_gallery: Path, pixels: list[np.ndarray]) -> None:
    """Every stored palette is sorted with weights summing to 1, and its heaviest colour is common in the work."""
    gallery = Gallery.load(shared_gallery)
    stored = np.load(shared_gallery / PALETTES, allow_pickle=False)
    assert stored.shape == (len(gallery), 5, 4) and stored.dtype == np.float32
    assert np.allclose(stored[:, :, 3].sum(axis=1), 1.0, atol=1e-5)
    assert (np.diff(stored[:, :, 3], axis=1) <= 0).all()
    for palette, work in zip(stored, pixels, strict=True):
        near_heaviest = (np.linalg.norm(work - palette[0, :3], axis=1) < NEAR).mean()
        assert near_heaviest >= 0.5 * palette[0, 3], (palette[0], near_heaviest)


def test_a_gallery_of_the_previous_format_is_refused_naming_palettes_and_tags(
    tiny_gallery: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "format-2"
    copy.mkdir()
    for item in tiny_gallery.iterdir():
        (copy / item.name).symlink_to(item)
    manifest = (tiny_gallery / MANIFEST).read_text().replace('"format": 3', '"format": 2')
    (copy / MANIFEST).unlink()
    (copy / MANIFEST).write_text(manifest)

    with pytest.raises(GalleryMismatchError) as refused:
        Gallery.load(copy)

    message = str(refused.value)
    assert "format 2" in message and "palettes and zero-shot tags" in message
    assert "python -m inference.gallery build" in message
