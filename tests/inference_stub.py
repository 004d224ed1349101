"""An inference service stand-in that answers at once with fixed sets: for tests and benchmarks that measure the bot
(its handlers, storage and Telegram traffic), not the models. It speaks the contract of inference/contract.py."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from PIL import Image


def _jpeg(colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def _canned_hits(offset: int, k: int) -> list[dict[str, Any]]:
    return [
        {
            "artwork_id": offset + i,
            "score": 0.9 - i / 100,
            "title": f"Work {offset + i}",
            "artist": "Painter",
            "year": "1900",
            "style": "Impressionism",
            "file": f"{offset + i}.jpg",
        }
        for i in range(k)
    ]


@contextlib.asynccontextmanager
async def canned_inference() -> AsyncIterator[str]:
    """An inference service that answers at once with fixed sets (by_look: works 0-4, by_meaning: 5-9)."""
    image = _jpeg()
    sets = {"by_look": 0, "by_meaning": 5}

    async def look(request: web.Request) -> web.Response:
        await request.read()
        k = int(request.query.get("k", "5"))
        return web.json_response({"image_sha256": uuid.uuid4().hex, "recommendations": {"by_look": _canned_hits(0, k)}})

    async def analyze(request: web.Request) -> web.Response:
        form = await request.post()
        k = int(request.query.get("k", "5"))
        names = [n for n in str(form.get("recommenders") or "by_look,by_meaning").split(",") if n in sets]
        return web.json_response(
            {
                "image_sha256": uuid.uuid4().hex,
                "description": "An impressionist landscape in soft blues.",
                "recommendations": {name: _canned_hits(sets[name], k) for name in names},
                "models": {"clip": "canned", "text": "canned", "describer": "canned"},
            }
        )

    async def recommenders(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "recommenders": [
                    {"name": "by_look", "needs": ["image"], "personal": False, "fast": True},
                    {"name": "by_meaning", "needs": ["description"], "personal": False, "fast": False},
                ]
            }
        )

    async def artwork_image(request: web.Request) -> web.Response:
        return web.Response(body=image, content_type="image/jpeg")

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "gallery_size": 10})

    app = web.Application(client_max_size=32 * 1024 * 1024)
    app.router.add_post("/v1/look", look)
    app.router.add_post("/v1/analyze", analyze)
    app.router.add_get("/v1/recommenders", recommenders)
    app.router.add_get("/v1/artworks/{id}/image", artwork_image)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


