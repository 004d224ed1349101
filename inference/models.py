"""The model bundle the service and the gallery build share: protocols, and one factory from settings.

Every wrapper has an idempotent `load()` and batch-level methods that take lists; vectors come back as
float32 numpy arrays with L2-normalised rows. Nothing is loaded at import time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image

from inference.gallery_store import ModelIdentity


class ImageTextEmbedder(Protocol):
    """CLIP: images and texts into one space."""

    name: str
    weights: str | None

    @property
    def dim(self) -> int: ...

    def load(self) -> None: ...
    def embed_images(self, images: list[Image.Image]) -> np.ndarray: ...
    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class TextEmbedder(Protocol):
    """A sentence-transformer for descriptions."""

    name: str

    @property
    def dim(self) -> int: ...

    def load(self) -> None: ...
    def embed_texts(self, texts: list[str]) -> np.ndarray: ...


class Describer(Protocol):
    """Turns images into art-guide descriptions: LLaVA on a GPU (`describer.py`), SmolVLM on a CPU
    (`smolvlm_describer.py`)."""

    name: str

    def load(self) -> None: ...
    def describe(self, images: list[Image.Image]) -> list[str]: ...



class DescriberUnavailable(RuntimeError):
    """A describer server gave no description (unreachable, too slow, an error answer): it heals by waiting, so the
    API answers 503 + Retry-After, not 500."""


@runtime_checkable
class RemoteDescriber(Describer, Protocol):
    """A describer that is a server of its own (vLLM): it can be down while this service is up, so /healthz
    says whether it answers (`ready`)."""

    def health(self) -> dict[str, Any]: ...


class Translator(Protocol):
    """English descriptions into one other language (MarianMT opus-mt-en-<language>)."""

    name: str
    language: str

    def load(self) -> None: ...
    def translate(self, texts: list[str]) -> list[str]: ...


@dataclass
class Models:
    clip: ImageTextEmbedder
    text: TextEmbedder
    describer: Describer
    translators: dict[str, Translator] = field(default_factory=dict)
    """By target language. Loaded by the service at start (`translate_routes`), not by `load()`: the gallery
    build needs no translator."""

    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            clip_arch=self.clip.name,
            clip_weights=self.clip.weights,
            clip_dim=self.clip.dim,
            text_model=self.text.name,
            text_dim=self.text.dim,
        )

    def versions(self) -> dict[str, str]:
        """Recorded with every analysis so results can be traced to the models that made them."""
        identity = self.identity().normalised()
        return {
            "clip": f"{identity.clip_arch}:{identity.clip_weights or 'random'}",
            "text": identity.text_model,
            "describer": self.describer.name,
            **{f"translator_{language}": t.name for language, t in sorted(self.translators.items())},
        }

    def load(self) -> None:
        self.clip.load()
        self.text.load()
        self.describer.load()
