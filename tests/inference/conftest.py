"""Fixtures of the HTTP service tests: an in-process app over the tiny models and the synthetic gallery."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from inference.api import create_app
from inference.models import Models
from inference.settings import InferenceSettings

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def serving(settings: InferenceSettings, models: Models) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (httpx's ASGITransport does not) and give a client that talks to it."""
    app = create_app(settings, models)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://inference.test", timeout=60) as client:
            yield client


@pytest.fixture(scope="session")
def make_settings(tiny_gallery: Path) -> Callable[..., InferenceSettings]:
    def make(**overrides: Any) -> InferenceSettings:
        """Relevance floors off unless a test asks for them: see `tiny_model_env` for why."""
        values: dict[str, Any] = {
            "token": TOKEN,
            "gallery_dir": tiny_gallery,
            "top_k": 4,
            "relevance_floor": False,
            **overrides,
        }
        return InferenceSettings(**values)

    return make


@pytest.fixture(scope="session")
async def api(make_settings: Callable[..., InferenceSettings], tiny_models: Models) -> AsyncIterator[httpx.AsyncClient]:
    """One app for the tests that need no special settings."""
    async with serving(make_settings(), tiny_models) as client:
        yield client


class GatedDescriber:
    """Wraps a describer so a test can hold describe calls (a slow LLaVA) and release them."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.gate = threading.Event()
        self.entered = threading.Event()

    def load(self) -> None:
        self.inner.load()

    def describe(self, images: list[Image.Image]) -> list[str]:
        self.entered.set()
        if not self.gate.wait(60):
            raise TimeoutError("describer gate never opened")
        return self.inner.describe(images)
