"""Identification through the service: /v1/identify, the `match` of /v1/look and /v1/analyze, the matched work
left out of every set, and a gallery without identification data refused at start."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from inference.api import create_app
from inference.gallery_store import IDENTIFY_DIR, MANIFEST, Gallery, GalleryMismatchError
from inference.identify.synthetic import Photo, painting, photograph
from inference.models import Models
from inference.settings import InferenceSettings
from tests.inference.conftest import AUTH, serving

# Larger than the 1024 px the service decodes to, so corners must be scaled back to the upload's pixels.
PHOTO_SIDE = 1600


def phone_photo(gallery_source: tuple[Path, Path], tiny_gallery: Path, index: int, seed: int) -> tuple[int, Photo]:
    """A synthetic phone photo (angle, frame, wall, glare, blur, noise, JPEG 60) of gallery work `index`, all
    of the work in the frame (a visitor may still hide part of it)."""
    images, _ = gallery_source
    artwork = Gallery.load(tiny_gallery).artworks[index]
    with Image.open(images / artwork.file) as source:
        work = np.asarray(source.convert("RGB"))
    photo = photograph(np.random.default_rng(seed), work, photo_side=PHOTO_SIDE, max_tilt_deg=30, max_cut=0.0)
    return artwork.id, photo


def upload(photo: Photo) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("photo.jpg", photo.jpeg, "image/jpeg")}


def ids(hits: list[dict[str, Any]]) -> set[int]:
    return {int(hit["artwork_id"]) for hit in hits}


def assert_corners_of(match: dict[str, Any], photo: Photo) -> None:
    """Four corners inside the photo, each within 3 % of its diagonal of where the work really is."""
    corners = np.array(match["corners"], float)
    height, width = photo.image.shape[:2]
    assert corners.shape == (4, 2)
    assert (corners >= -2).all() and (corners[:, 0] <= width + 2).all() and (corners[:, 1] <= height + 2).all()
    error = np.abs(corners - photo.corners).max()
    assert error < 0.03 * np.hypot(width, height), (corners, photo.corners)


async def test_a_phone_photo_of_a_gallery_work_is_identified_with_its_corners_in_the_photo(
    api: httpx.AsyncClient, gallery_source: tuple[Path, Path], tiny_gallery: Path
) -> None:
    artwork_id, photo = phone_photo(gallery_source, tiny_gallery, 6, seed=1)
    response = await api.post("/v1/identify", files=upload(photo), headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    match = body["match"]
    artwork = Gallery.load(tiny_gallery).artworks[artwork_id]
    assert match["artwork_id"] == artwork_id
    assert (match["title"], match["artist"], match["year"], match["file"]) == (
        artwork.title,
        artwork.artist,
        artwork.year,
        artwork.file,
    )
    assert 0.99 <= match["confidence"] <= 1.0 and match["inliers"] >= 15
    assert_corners_of(match, photo)
    assert {"decode", "identify_features", "identify_verify", "total"} <= set(body["timings_ms"])
    assert len(body["image_sha256"]) == 64


async def test_look_and_analyze_name_the_same_work_and_leave_it_out_of_every_set(
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    gallery_source: tuple[Path, Path],
    tiny_gallery: Path,
) -> None:
    artwork_id, photo = phone_photo(gallery_source, tiny_gallery, 9, seed=2)
    # No relevance floor: with random CLIP weights it could cut sets short, and this test counts works.
    async with serving(make_settings(relevance_floor=False), tiny_models) as api:
        look, analyze, identify = await asyncio.gather(
            api.post("/v1/look", params={"k": 4}, files=upload(photo), headers=AUTH),
            api.post(
                "/v1/analyze",
                params={"k": 4},
                data={"recommenders": "by_look,by_meaning,fused"},
                files=upload(photo),
                headers=AUTH,
            ),
            api.post("/v1/identify", files=upload(photo), headers=AUTH),
        )
    assert look.status_code == analyze.status_code == identify.status_code == 200, analyze.text
    named = identify.json()["match"]
    assert named["artwork_id"] == artwork_id
    assert look.json()["match"] == analyze.json()["match"] == named
    sets = [look.json()["recommendations"]["by_look"], *analyze.json()["recommendations"].values()]
    assert len(sets) == 4
    for hits in sets:
        assert len(hits) == 4 and artwork_id not in ids(hits)


async def test_a_photo_of_a_work_outside_the_gallery_gets_no_match_and_a_full_set(api: httpx.AsyncClient) -> None:
    rng = np.random.default_rng(77)
    photo = photograph(rng, painting(rng, 384), photo_side=1024)
    identify = await api.post("/v1/identify", files=upload(photo), headers=AUTH)
    look = await api.post("/v1/look", params={"k": 3}, files=upload(photo), headers=AUTH)
    assert identify.status_code == look.status_code == 200
    assert identify.json()["match"] is None
    assert look.json()["match"] is None
    assert len(look.json()["recommendations"]["by_look"]) <= 3  # (the relevance floor may cut it short)


async def test_identification_with_clip_fusion_gives_the_same_answer(
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    gallery_source: tuple[Path, Path],
    tiny_gallery: Path,
) -> None:
    """With CLIP weights configured, CLIP's top hits are verified too; the answer stays the work's."""
    artwork_id, photo = phone_photo(gallery_source, tiny_gallery, 2, seed=3)
    settings = make_settings(clip_weights=str(tiny_models.clip.weights), identify_clip_candidates=5)
    async with serving(settings, tiny_models) as client:
        response = await client.post("/v1/look", params={"k": 3}, files=upload(photo), headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["match"]["artwork_id"] == artwork_id
        health = (await client.get("/healthz")).json()["identification"]
        assert health["works"] == len(Gallery.load(tiny_gallery))
        assert health["clip_candidates"] == 5 and health["threshold"]["min_inliers"] >= 15


def _format_1_copy(tiny_gallery: Path, tmp_path: Path) -> Path:
    """The gallery as the format-1 build wrote it: no identify/ folder, format 1 in the manifest."""
    copy = tmp_path / "format-1"
    shutil.copytree(tiny_gallery, copy)
    shutil.rmtree(copy / IDENTIFY_DIR)
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    return copy


async def test_a_format_1_gallery_is_refused_at_start_with_a_clear_message(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, tiny_gallery: Path, tmp_path: Path
) -> None:
    app = create_app(make_settings(gallery_dir=_format_1_copy(tiny_gallery, tmp_path)), tiny_models)
    with pytest.raises(GalleryMismatchError) as refused:
        async with app.router.lifespan_context(app):
            pass
    message = str(refused.value)
    assert "format 1" in message and "identification data" in message
    assert "python -m inference.gallery build" in message
