"""The HTTP contract of the inference service, with the tiny real models and a gallery built from them."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image

from inference.api import create_app
from inference.gallery_store import MANIFEST, Gallery, GalleryMismatchError
from inference.models import Models
from inference.pipeline import Pipeline
from inference.serve import parse_args, settings_from
from inference.settings import InferenceSettings
from tests.factories import image_bytes, png_claiming_size, synthetic_artwork
from tests.inference.conftest import AUTH, TOKEN, GatedDescriber, serving

ROOT = Path(__file__).resolve().parents[2]
HIT_KEYS = {"artwork_id", "score", "id", "title", "artist", "year", "style", "genre", "description"}


def upload(data: bytes) -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("photo.jpg", data, "application/octet-stream")}


def gallery_photo(gallery_dir: Path, source_images: Path, index: int) -> tuple[int, bytes]:
    """The original file of one gallery artwork, and the id the gallery gave it."""
    artwork = Gallery.load(gallery_dir).artworks[index]
    return artwork.id, (source_images / artwork.file).read_bytes()


def ids(hits: list[dict[str, Any]]) -> list[int]:
    return [int(hit["artwork_id"]) for hit in hits]


def assert_ranked(hits: list[dict[str, object]], k: int) -> None:
    assert len(hits) == k
    assert all(HIT_KEYS <= hit.keys() for hit in hits)
    scores = [float(hit["score"]) for hit in hits]  # type: ignore[arg-type]
    assert scores == sorted(scores, reverse=True)
    assert len({hit["artwork_id"] for hit in hits}) == k


# --- auth and health ---


async def test_healthz_needs_no_token_and_shows_no_secret(
    api: httpx.AsyncClient, tiny_models: Models, tiny_gallery: Path
) -> None:
    response = await api.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["gallery_size"] == len(Gallery.load(tiny_gallery)) > 0
    assert body["models"] == tiny_models.versions()
    assert TOKEN not in response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
    ids=["missing", "wrong", "other-scheme", "no-scheme"],
)
async def test_everything_but_health_and_docs_needs_the_token(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    photo = image_bytes(synthetic_artwork(1))
    for response in (
        await api.post("/v1/look", files=upload(photo), headers=headers),
        await api.post("/v1/analyze", files=upload(photo), headers=headers),
        await api.post("/v1/identify", files=upload(photo), headers=headers),
        await api.get("/v1/artworks/0", headers=headers),
        await api.get("/v1/artworks/0/image", headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert (await api.get("/docs")).status_code == 200
    spec = (await api.get("/openapi.json")).json()
    assert {
        "/v1/look",
        "/v1/analyze",
        "/v1/identify",
        "/v1/artworks/{artwork_id}/image",
        "/healthz",
    } <= spec["paths"].keys()


# --- the fast path and the full answer ---


async def test_look_ranks_the_uploaded_gallery_image_first_when_identification_is_off(
    make_settings: Callable[..., InferenceSettings],
    tiny_gallery: Path,
    gallery_source: tuple[Path, Path],
    tiny_models: Models,
) -> None:
    artwork_id, photo = gallery_photo(tiny_gallery, gallery_source[0], 3)
    async with serving(make_settings(identify=False), tiny_models) as client:
        response = await client.post("/v1/look", params={"k": 5}, files=upload(photo), headers=AUTH)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"image_sha256", "recommendations", "match", "tags", "timings_ms", "models"}
        assert body["match"] is None
        hits = body["recommendations"]["by_look"]
        assert_ranked(hits, 5)
        assert hits[0]["artwork_id"] == artwork_id
        assert hits[0]["score"] > 0.99
        assert set(body["timings_ms"]) == {"decode", "clip", "search", "total"}
        assert body["models"] == tiny_models.versions()
        assert len(body["image_sha256"]) == 64
        assert (await client.get("/healthz")).json()["identification"] is None
        identify = await client.post("/v1/identify", files=upload(photo), headers=AUTH)
        assert identify.status_code == 200 and identify.json()["match"] is None


async def test_look_names_the_uploaded_gallery_work_and_leaves_it_out_of_the_set(
    api: httpx.AsyncClient, tiny_gallery: Path, gallery_source: tuple[Path, Path]
) -> None:
    artwork_id, photo = gallery_photo(tiny_gallery, gallery_source[0], 3)
    response = await api.post("/v1/look", params={"k": 5}, files=upload(photo), headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["match"]["artwork_id"] == artwork_id
    hits = body["recommendations"]["by_look"]
    assert_ranked(hits, 5)
    assert artwork_id not in {hit["artwork_id"] for hit in hits}
    assert set(body["timings_ms"]) == {"decode", "clip", "search", "identify_features", "identify_verify", "total"}


async def test_look_defaults_to_settings_top_k_and_caps_k(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(101))
    response = await api.post("/v1/look", files=upload(photo), headers=AUTH)
    assert len(response.json()["recommendations"]["by_look"]) == 4  # top_k of make_settings
    for bad_k in (0, 21, "many"):
        response = await api.post("/v1/look", params={"k": bad_k}, files=upload(photo), headers=AUTH)
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"


async def test_analyze_describes_and_recommends_both_ways(
    api: httpx.AsyncClient, tiny_gallery: Path, gallery_source: tuple[Path, Path]
) -> None:
    artwork_id, photo = gallery_photo(tiny_gallery, gallery_source[0], 5)
    response = await api.post("/v1/analyze", params={"k": 3}, files=upload(photo), headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"image_sha256", "description", "recommendations", "match", "tags", "timings_ms", "models"}
    assert isinstance(body["description"], str) and body["description"].strip()
    assert_ranked(body["recommendations"]["by_look"], 3)
    assert_ranked(body["recommendations"]["by_meaning"], 3)
    assert body["match"]["artwork_id"] == artwork_id  # the photographed work is named, not recommended
    assert all(artwork_id not in ids(hits) for hits in body["recommendations"].values())
    assert set(body["timings_ms"]) == {
        "decode",
        "clip",
        "search",
        "describe",
        "text_embed",
        "identify_features",
        "identify_verify",
        "total",
    }
    assert all(value >= 0 for value in body["timings_ms"].values())


async def test_look_and_analyze_of_the_same_photo_agree(api: httpx.AsyncClient) -> None:
    photo = image_bytes(synthetic_artwork(7, size=(120, 90)))
    look, analyze = await asyncio.gather(
        api.post("/v1/look", files=upload(photo), headers=AUTH),
        api.post("/v1/analyze", files=upload(photo), headers=AUTH),
    )
    assert look.status_code == analyze.status_code == 200
    assert look.json()["image_sha256"] == analyze.json()["image_sha256"]
    look_ids = [hit["artwork_id"] for hit in look.json()["recommendations"]["by_look"]]
    assert look_ids == [hit["artwork_id"] for hit in analyze.json()["recommendations"]["by_look"]]


# --- refusals ---


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"", 400, "empty"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", 415, "not_an_image"),
        (b"just some text, named photo.jpg\n" * 10, 415, "not_an_image"),
        (image_bytes(synthetic_artwork(2))[:400], 415, "not_an_image"),
        (image_bytes(synthetic_artwork(2), "GIF"), 415, "unsupported_format"),
        (png_claiming_size(20000, 20000), 422, "too_many_pixels"),
    ],
    ids=["empty", "pdf", "text", "truncated-jpeg", "gif", "png-bomb"],
)
async def test_non_images_get_a_4xx_json_error(api: httpx.AsyncClient, data: bytes, status: int, code: str) -> None:
    for path in ("/v1/look", "/v1/analyze", "/v1/identify"):
        response = await api.post(path, files=upload(data), headers=AUTH)
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error"] == code
        assert isinstance(body["detail"], str) and body["detail"]


async def test_missing_image_field_is_a_json_422(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/look", data={"photo": "x"}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


async def test_uploads_over_the_cap_get_413(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    cap = 4096
    async with serving(make_settings(max_upload_bytes=cap), tiny_models) as client:
        small = image_bytes(synthetic_artwork(3, size=(40, 30)))
        assert len(small) < cap
        assert (await client.post("/v1/look", files=upload(small), headers=AUTH)).status_code == 200

        just_over = await client.post("/v1/look", files=upload(b"\xff" * (cap + 1)), headers=AUTH)
        way_over = await client.post("/v1/analyze", files=upload(b"\xff" * (5 * 1024 * 1024)), headers=AUTH)
        identify_over = await client.post("/v1/identify", files=upload(b"\xff" * (5 * 1024 * 1024)), headers=AUTH)

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
            yield b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.jpg"\r\n\r\n'
            for _ in range(200):
                yield b"\xff" * 1024
            yield b"\r\n--b--\r\n"

        streamed = await client.post(
            "/v1/look", content=chunked(), headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"}
        )
        for response in (just_over, way_over, identify_over, streamed):
            assert response.status_code == 413, response.text
            assert response.json()["error"] == "too_large"
            assert "KiB" in response.json()["detail"]


# --- overload ---


async def test_with_a_zero_queue_a_second_analyze_gets_503_at_once(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    describer = GatedDescriber(tiny_models.describer)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    photo = image_bytes(synthetic_artwork(4))
    async with serving(make_settings(max_queue=0, describe_batch_wait_ms=0), models) as client:
        try:
            first = asyncio.ensure_future(client.post("/v1/analyze", files=upload(photo), headers=AUTH))
            await asyncio.to_thread(describer.entered.wait, 30)
            second = await asyncio.wait_for(client.post("/v1/analyze", files=upload(photo), headers=AUTH), 10)
            assert second.status_code == 503
            assert second.json() == {"error": "overloaded", "detail": second.json()["detail"]}
            assert 1 <= int(second.headers["Retry-After"]) <= 60
        finally:
            describer.gate.set()
        assert (await first).status_code == 200


async def test_a_busy_describer_neither_blocks_look_nor_queues_forever(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models
) -> None:
    describer = GatedDescriber(tiny_models.describer)
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    settings = make_settings(max_queue=1, describe_batch_size=1, describe_batch_wait_ms=0)
    photo = image_bytes(synthetic_artwork(5))
    async with serving(settings, models) as client:
        try:
            first = asyncio.ensure_future(client.post("/v1/analyze", files=upload(photo), headers=AUTH))
            await asyncio.to_thread(describer.entered.wait, 30)  # the first describe is running, and stuck
            second = asyncio.ensure_future(client.post("/v1/analyze", files=upload(photo), headers=AUTH))
            while not second.done() and _describe_queue(client) < 1:
                await asyncio.sleep(0.01)

            third = await client.post("/v1/analyze", files=upload(photo), headers=AUTH)
            assert third.status_code == 503
            assert third.json()["error"] == "overloaded"
            assert int(third.headers["Retry-After"]) >= 1

            clip = _pipeline(client).look_batcher  # max_queue=1 holds for CLIP too: let its queue clear
            while clip.queued or clip.computing:
                await asyncio.sleep(0.01)
            look = await asyncio.wait_for(client.post("/v1/look", files=upload(photo), headers=AUTH), 30)
            assert look.status_code == 200  # the fast path is not stuck behind the describer
            assert not first.done()
        finally:
            describer.gate.set()
        assert (await first).status_code == 200
        assert (await second).status_code == 200


def _pipeline(client: httpx.AsyncClient) -> Pipeline:
    return client._transport.app.state.pipeline  # type: ignore[attr-defined]


def _describe_queue(client: httpx.AsyncClient) -> int:
    return _pipeline(client).meaning_batcher.queued


# --- gallery artworks ---


async def test_artwork_image_and_metadata(api: httpx.AsyncClient, tiny_gallery: Path) -> None:
    gallery = Gallery.load(tiny_gallery)
    response = await api.get("/v1/artworks/2/image", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as image:
        image.load()
        assert image.format == "JPEG"

    metadata = (await api.get("/v1/artworks/2", headers=AUTH)).json()
    assert metadata == {"artwork_id": 2, **gallery.artworks[2].public()}
    assert metadata["title"] == gallery.artworks[2].title

    for path in (
        f"/v1/artworks/{len(gallery)}",
        f"/v1/artworks/{len(gallery)}/image",
        "/v1/artworks/99999/image",
    ):
        response = await api.get(path, headers=AUTH)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    for path in ("/v1/artworks/-1/image", "/v1/artworks/abc", "/v1/artworks/1.5/image"):
        response = await api.get(path, headers=AUTH)
        assert response.status_code in (404, 422)
        assert "error" in response.json()


# --- a real socket, the CLI, and the model check at start ---


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_over_a_real_socket(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, gallery_source: tuple[Path, Path]
) -> None:
    port = _free_port()
    app = create_app(make_settings(max_upload_bytes=256 * 1024), tiny_models)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            assert not task.done(), "server failed to start"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            assert (await client.get("/healthz")).json()["status"] == "ok"
            photo = (gallery_source[0] / sorted(p.name for p in gallery_source[0].iterdir())[0]).read_bytes()
            look, analyze = await asyncio.gather(
                client.post("/v1/look", params={"k": 2}, files=upload(photo), headers=AUTH),
                client.post("/v1/analyze", params={"k": 2}, files=upload(photo), headers=AUTH),
            )
            assert look.status_code == analyze.status_code == 200
            assert_ranked(look.json()["recommendations"]["by_look"], 2)
            assert analyze.json()["description"]
            unauthorised = await client.post("/v1/look", files=upload(photo))
            assert unauthorised.status_code == 401
            too_big = await client.post("/v1/look", files=upload(b"\0" * (2 * 1024 * 1024)), headers=AUTH)
            assert too_big.status_code == 413  # refused by Content-Length, before the body is read
            assert too_big.json()["error"] == "too_large"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def _mismatched_copy(tiny_gallery: Path, tmp_path: Path) -> Path:
    """The same gallery, but its manifest says it was built with another text model."""
    copy = tmp_path / "other-models"
    shutil.copytree(tiny_gallery, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["models"]["text_model"] = "some-other-minilm"
    (copy / MANIFEST).write_text(json.dumps(manifest))
    return copy


async def test_a_gallery_of_other_models_fails_the_start(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, tiny_gallery: Path, tmp_path: Path
) -> None:
    describer = GatedDescriber(tiny_models.describer)  # records load(): the slow model must not be loaded
    describer.load = lambda: describer.entered.set()  # type: ignore[method-assign]
    models = Models(clip=tiny_models.clip, text=tiny_models.text, describer=describer)
    app = create_app(make_settings(gallery_dir=_mismatched_copy(tiny_gallery, tmp_path)), models)
    with pytest.raises(GalleryMismatchError, match="some-other-minilm"):
        async with app.router.lifespan_context(app):
            pass
    assert not describer.entered.is_set()


def test_the_cli_exits_at_start_on_a_gallery_of_other_models(
    tiny_gallery: Path, tiny_model_env: dict[str, str], tmp_path: Path
) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("INFERENCE_")}
    env = {
        **inherited,
        **tiny_model_env,
        "INFERENCE_TOKEN": TOKEN,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    gallery = _mismatched_copy(tiny_gallery, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "inference.serve", "--gallery", str(gallery), "--port", str(_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode != 0
    assert "GalleryMismatchError" in result.stderr
    assert "some-other-minilm" in result.stderr
    assert TOKEN not in result.stderr + result.stdout


def test_cli_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("INFERENCE_TOKEN", "from-env")
    monkeypatch.setenv("INFERENCE_GALLERY_DIR", "/from/env")
    monkeypatch.setenv("INFERENCE_DEVICE", "cuda")
    args = parse_args(["--gallery", str(tmp_path), "--port", "9123", "--device", "cpu"])
    settings = settings_from(args)
    assert (settings.gallery_dir, settings.device, args.port, args.host) == (
        tmp_path,
        "cpu",
        9123,
        "127.0.0.1",
    )
    assert settings_from(parse_args([])).gallery_dir == Path("/from/env")
    monkeypatch.delenv("INFERENCE_TOKEN")
    with pytest.raises(SystemExit, match="INFERENCE_TOKEN|token"):
        settings_from(parse_args(["--gallery", str(tmp_path)]))


class CountingClip:
    """Counts CLIP image passes, so a test can see work the service did twice."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name, self.weights, self.dim = inner.name, inner.weights, inner.dim
        self.images_embedded = 0

    def load(self) -> None:
        self.inner.load()

    def embed_images(self, images: list[Any]) -> Any:
        self.images_embedded += len(images)
        return self.inner.embed_images(images)

    def embed_texts(self, texts: list[str]) -> Any:
        return self.inner.embed_texts(texts)


async def test_look_and_analyze_of_one_photo_share_one_clip_pass(
    make_settings: Any, tiny_models: Models, gallery_source: tuple[Path, Path]
) -> None:
    clip = CountingClip(tiny_models.clip)
    models = Models(clip=clip, text=tiny_models.text, describer=tiny_models.describer)
    images, _ = gallery_source
    photo = (images / "work_004.jpg").read_bytes()
    async with serving(make_settings(), models) as client:
        files = {"image": ("p.jpg", photo, "image/jpeg")}
        look, full = await asyncio.gather(
            client.post("/v1/look", files=files, headers=AUTH), client.post("/v1/analyze", files=files, headers=AUTH)
        )
        assert look.status_code == full.status_code == 200
        assert look.json()["recommendations"]["by_look"] == full.json()["recommendations"]["by_look"]
        assert clip.images_embedded == 1
        other = (images / "work_005.jpg").read_bytes()
        assert (await client.post("/v1/look", files={"image": ("o.jpg", other, "image/jpeg")}, headers=AUTH)).is_success
        assert clip.images_embedded == 2


# --- relevance floors (the fixtures run without them: see tests/conftest.py `tiny_model_env`) ---

SETS = "by_look,by_meaning,by_text_clip,fused"


def _gallery_with_floors(tiny_gallery: Path, tmp_path: Path, floors: dict[str, Any] | None) -> Path:
    """A copy of the tiny gallery whose manifest carries these floors (None: an older build without any)."""
    copy = tmp_path / "floored"
    shutil.copytree(tiny_gallery, copy)
    raw = json.loads((copy / MANIFEST).read_text())
    raw.pop("relevance", None)
    if floors is not None:
        raw["relevance"] = floors
    (copy / MANIFEST).write_text(json.dumps(raw))
    return copy


async def test_a_photo_nothing_is_close_to_gets_empty_sets_unless_the_floor_is_switched_off(
    make_settings: Callable[..., InferenceSettings], tiny_models: Models, tiny_gallery: Path, tmp_path: Path
) -> None:
    """Floors no cosine can clear stand in for a photo far from every work (random weights cannot make one)."""
    unreachable = {"floor": 1.5, "quantile": 0.99, "pairs": 91, "mean": 0.5, "std": 0.1}
    copy = _gallery_with_floors(tiny_gallery, tmp_path, {s: unreachable for s in ("image", "text", "clip_text")})
    photo = upload(image_bytes(synthetic_artwork(60)))
    async with serving(make_settings(gallery_dir=copy, relevance_floor=True), tiny_models) as client:
        look = await client.post("/v1/look", files=photo, headers=AUTH)
        assert look.status_code == 200 and look.json()["recommendations"] == {"by_look": []}
        full = await client.post("/v1/analyze", files=photo, data={"recommenders": SETS}, headers=AUTH)
        assert full.status_code == 200, full.text
        assert full.json()["recommendations"] == {name: [] for name in SETS.split(",")}
        assert full.json()["description"]  # the photo is still described: only the weak matches are gone
    async with serving(make_settings(gallery_dir=copy, relevance_floor=False), tiny_models) as client:
        full = await client.post("/v1/analyze", params={"k": 3}, files=photo, data={"recommenders": SETS}, headers=AUTH)
        assert all(len(hits) == 3 for hits in full.json()["recommendations"].values())


async def test_the_built_floor_keeps_exactly_the_hits_that_clear_it(
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    tiny_gallery: Path,
    gallery_source: tuple[Path, Path],
) -> None:
    artwork_id, data = gallery_photo(tiny_gallery, gallery_source[0], 2)
    floor = (Gallery.load(tiny_gallery).manifest.relevance or {})["image"].floor
    sets = {}
    for on in (True, False):
        async with serving(make_settings(relevance_floor=on, identify=False), tiny_models) as client:
            response = await client.post("/v1/look", params={"k": 5}, files=upload(data), headers=AUTH)
            assert response.status_code == 200, response.text
            sets[on] = response.json()["recommendations"]["by_look"]
    kept, everything = sets[True], sets[False]
    assert ids(kept)[0] == artwork_id  # the work itself is as close as it gets
    assert ids(kept) == ids(everything)[: len(kept)] and len(everything) == 5
    assert all(hit["score"] >= floor - 1e-4 for hit in kept)
    assert all(hit["score"] < floor + 1e-4 for hit in everything[len(kept) :])


async def test_a_gallery_built_before_floors_serves_full_sets_and_says_so_once(
    make_settings: Callable[..., InferenceSettings],
    tiny_models: Models,
    tiny_gallery: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    copy = _gallery_with_floors(tiny_gallery, tmp_path, None)
    photo = upload(image_bytes(synthetic_artwork(61)))
    with caplog.at_level(logging.WARNING, logger="inference.relevance"):
        async with serving(make_settings(gallery_dir=copy, relevance_floor=True), tiny_models) as client:
            for _ in range(2):
                look = await client.post("/v1/look", params={"k": 5}, files=photo, headers=AUTH)
                assert len(look.json()["recommendations"]["by_look"]) == 5
    warnings = [r.getMessage() for r in caplog.records if r.name == "inference.relevance"]
    assert len(warnings) == 1 and "no relevance floors" in warnings[0]
