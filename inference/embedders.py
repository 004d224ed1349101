"""Embedding models: open_clip for images and texts in one space, sentence-transformers for descriptions.

Both load local files only (a model that quietly downloads would stall a server start or a test run), load
lazily and idempotently, and return float32 arrays with L2-normalised rows so that inner product is cosine.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def _to_numpy(vectors: torch.Tensor) -> np.ndarray:
    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)


class ClipEmbedder:
    """An open_clip model: a built-in architecture or one registered from JSON; local weights."""

    def __init__(
        self,
        arch: str,
        weights: str | None,
        device: str,
        config_json: Path | None = None,
        batch_size: int = 32,
    ) -> None:
        if weights is not None and not Path(weights).is_file():
            # open_clip treats other strings as pretrained tags and downloads them.
            raise FileNotFoundError(f"CLIP weights {weights!r} are not a local file")
        self.name = arch
        self.weights = weights
        self.device = device
        self.config_json = Path(config_json) if config_json is not None else None
        self.batch_size = batch_size
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._config: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def _model_config(self) -> dict[str, Any]:
        if self._config is not None:
            return self._config
        import open_clip

        if self.config_json is not None:
            if not self.config_json.is_file():
                raise FileNotFoundError(f"CLIP config {self.config_json} does not exist")
            open_clip.add_model_config(self.config_json)
        config = open_clip.get_model_config(self.name)
        if config is None:
            hint = f" (from {self.config_json}, the arch must be the file's stem)" if self.config_json else ""
            raise ValueError(f"unknown open_clip architecture {self.name!r}{hint}")
        self._config = config
        return config

    @property
    def dim(self) -> int:
        """Known from the config without loading weights, so a gallery can be checked before a slow load."""
        return int(self._model_config()["embed_dim"])

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            import open_clip

            self._model_config()
            model, _, preprocess = open_clip.create_model_and_transforms(
                self.name, pretrained=self.weights, device=self.device
            )
            model.eval()
            self._tokenizer = open_clip.get_tokenizer(self.name)
            self._preprocess = preprocess
            self._model = model

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return _empty(self.dim)
        self.load()
        rows = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                pixels = torch.stack([self._preprocess(image.convert("RGB")) for image in chunk])
                rows.append(_to_numpy(self._model.encode_image(pixels.to(self.device))))
        return np.concatenate(rows)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        self.load()
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                tokens = self._tokenizer(texts[start : start + self.batch_size]).to(self.device)
                rows.append(_to_numpy(self._model.encode_text(tokens)))
        return np.concatenate(rows)


class SentenceEmbedder:
    """A sentence-transformers model from a local directory (all-MiniLM-L6-v2 by default)."""

    def __init__(self, model: str, device: str, batch_size: int = 64) -> None:
        self.name = model
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        """Only the loaded model knows its output size (pooling and dense layers may change it)."""
        self.load()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        return int(get_dim())

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(self.name, device=self.device, local_files_only=True)
            model.eval()
            self._model = model

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return _empty(self.dim)
        self.load()
        with torch.inference_mode():
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
