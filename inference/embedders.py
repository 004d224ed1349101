"""Embedding models: open_clip for images and texts in one space, sentence-transformers for descriptions.

Both load local files only (a model that quietly downloads would stall a server start or a test run), load
lazily and idempotently, and return float32 arrays with L2-normalised rows so that inner product is cosine.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inference.clip_openvino import (
    ExportSpec,
    IrStore,
    OpenVinoClip,
    Runtime,
    choose_precision,
    choose_runtime,
    default_cache_dir,
    load_openvino_clip,
)
from inference.clip_preprocess import ClipPreprocessor, PreprocessSpec

logger = logging.getLogger(__name__)


def _empty(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


def _to_numpy(vectors: torch.Tensor) -> np.ndarray:
    vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)
    return np.ascontiguousarray(vectors.cpu().numpy(), dtype=np.float32)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as `torch.nn.functional.normalize` does (same epsilon)."""
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class ClipEmbedder:
    """An open_clip model: a built-in architecture or one registered from JSON; local weights. Its towers run on
    torch (the reference, and the GPU path) or, on a CPU, on OpenVINO (`inference.clip_openvino`); callers see
    the same vectors either way."""

    def __init__(
        self,
        arch: str,
        weights: str | None,
        device: str,
        config_json: Path | None = None,
        batch_size: int = 32,
        tokenizer: str | None = None,
        runtime: str = "torch",
        precision: str = "auto",
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        if weights is not None and not Path(weights).is_file():
            # open_clip treats other strings as pretrained tags and downloads them.
            raise FileNotFoundError(f"CLIP weights {weights!r} are not a local file")
        self.name = arch
        self.weights = weights
        self.device = device
        self.config_json = Path(config_json) if config_json is not None else None
        self.batch_size = batch_size
        self.tokenizer_source = tokenizer
        """Where the text tower's tokenizer (and, for a Hugging Face text tower, its config.json) lives: a local
        directory or a hub id already in the local cache; None keeps the architecture config's own names."""
        self.requested_runtime = runtime
        """'auto', 'torch' or 'openvino' (INFERENCE_CLIP_RUNTIME); `runtime` is what `load()` chose."""
        self.runtime: Runtime | None = None
        self.requested_precision = precision
        self.threads = threads
        """OpenVINO's threads per pass (None: its default, every core); the torch path takes its thread count from
        the calling thread (`inference.threads`)."""
        self.cache_dir = cache_dir
        self._model: Any = None
        self._preprocess: Any = None
        self._tokenizer: Any = None
        self._openvino: OpenVinoClip | None = None
        self._pixels: ClipPreprocessor | None = None
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
            if self.runtime is not None:
                return
            runtime = choose_runtime(self.requested_runtime, self.device)
            text_cfg = self._text_config()
            tokenizer = self._make_tokenizer(text_cfg)
            if runtime == "openvino":
                try:
                    self._openvino = self._load_openvino(text_cfg, tokenizer)
                except Exception as exc:  # an architecture OpenVINO cannot trace, a full disk, ...
                    if self.requested_runtime == "openvino":
                        raise
                    # 'auto' means "OpenVINO when it works": a CPU deployment still starts, on the reference path
                    logger.warning("CLIP on OpenVINO failed (%s: %s); using torch", type(exc).__name__, exc)
                    runtime = "torch"
            if runtime == "openvino":
                assert self._openvino is not None
                self._pixels = ClipPreprocessor(PreprocessSpec.from_config(self._openvino.manifest["preprocess"]))
            else:
                self._model, self._preprocess = self._torch_model(text_cfg, self.device)
            self._tokenizer = tokenizer
            self.runtime = runtime
            logger.info("CLIP %s on %s", self.name, self.describe_runtime())

    def _torch_model(self, text_cfg: dict[str, Any], device: str) -> tuple[Any, Any]:
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms(
            self.name, pretrained=self.weights, device=device, text_cfg=text_cfg
        )
        model.eval()
        return model, preprocess

    def _load_openvino(self, text_cfg: dict[str, Any], tokenizer: Any) -> OpenVinoClip:
        import openvino as ov

        spec = ExportSpec(
            arch=self.name,
            model_config=self._export_config(text_cfg),
            weights=Path(self.weights) if self.weights is not None else None,
            precision=choose_precision(self.requested_precision, ov.Core()),
            openvino_version=ov.get_version(),
        )
        store = IrStore(Path(self.weights), self.cache_dir or default_cache_dir()) if self.weights else None
        return load_openvino_clip(
            spec,
            store,
            build_torch=lambda: self._torch_model(text_cfg, "cpu")[0],
            example_tokens=tokenizer(["a painting of a harbour at dawn"]),
            threads=self.threads,
        )

    def _export_config(self, text_cfg: dict[str, Any]) -> dict[str, Any]:
        """The architecture's config as the export depends on it: a Hugging Face text tower's config.json by its
        content, not by the folder it was read from (moving the folder must not cost a new export)."""
        config = {**self._model_config(), "text_cfg": dict(text_cfg)}
        source = text_cfg.get("hf_model_name")
        if source is not None:
            hf_config = Path(source) / "config.json"
            config["text_cfg"]["hf_config"] = json.loads(hf_config.read_text()) if hf_config.is_file() else None
            for key in ("hf_model_name", "hf_tokenizer_name"):
                config["text_cfg"].pop(key, None)
        return config

    def describe_runtime(self) -> str:
        """E.g. 'openvino bf16, 1 thread, IR from /models/openvino/<key>': for the start-up log."""
        openvino = self._openvino
        if openvino is None:
            return f"torch ({self.device})"
        threads = f"{openvino.threads} thread(s)" if openvino.threads else "all cores"
        where = f"{'exported to' if openvino.exported else 'IR from'} {openvino.folder or 'memory'}"
        return f"openvino {openvino.precision}, {threads}, {where}"

    def _text_config(self) -> dict[str, Any]:
        """The architecture's text config with its Hugging Face names resolved to local directories.

        A text tower from Hugging Face (`hf_model_name`, e.g. xlm-roberta-base) is built from its config.json only:
        its weights come from the CLIP checkpoint (or stay random), so `hf_model_pretrained` is always off and
        open_clip never fetches the base model."""
        text_cfg = dict(self._model_config()["text_cfg"])
        for key in ("hf_tokenizer_name", "hf_model_name"):
            if key in text_cfg:
                text_cfg[key] = local_hf_source(self.tokenizer_source or str(text_cfg[key]))
        if "hf_model_name" in text_cfg:
            text_cfg["hf_model_pretrained"] = False
        return text_cfg

    def _make_tokenizer(self, text_cfg: dict[str, Any]) -> Any:
        import open_clip
        from open_clip.tokenizer import HFTokenizer

        if "hf_tokenizer_name" not in text_cfg:
            return open_clip.get_tokenizer(self.name)  # CLIP's own BPE, shipped inside open_clip
        return HFTokenizer(
            text_cfg["hf_tokenizer_name"],
            context_length=self.context_length,
            local_files_only=True,
            **text_cfg.get("tokenizer_kwargs", {}),
        )

    @property
    def context_length(self) -> int:
        """Tokens the text tower reads; longer texts are cut to it (never an error)."""
        text_cfg = self._model_config()["text_cfg"]
        return int(text_cfg.get("context_length", DEFAULT_CONTEXT_LENGTH))

    def embed_images(self, images: list[Image.Image]) -> np.ndarray:
        if not images:
            return _empty(self.dim)
        self.load()
        if self._openvino is not None:
            assert self._pixels is not None
            return np.concatenate(
                [
                    _unit_rows(self._openvino.encode_image(self._pixels(images[start : start + self.batch_size])))
                    for start in range(0, len(images), self.batch_size)
                ]
            )
        rows = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                chunk = images[start : start + self.batch_size]
                pixels = torch.stack([self._preprocess(image.convert("RGB")) for image in chunk])
                rows.append(_to_numpy(self._model.encode_image(pixels.to(self.device))))
        return np.concatenate(rows)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        """Texts in any script the tokenizer reads; each is cut to `context_length` tokens, so a page of text costs
        what a sentence does. Callers refuse empty queries (an empty text still embeds, to a meaningless vector)."""
        if not texts:
            return _empty(self.dim)
        self.load()
        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                chunk = [clip_text(text, self.context_length) for text in texts[start : start + self.batch_size]]
                tokens = self._tokenizer(chunk)
                if self._openvino is not None:
                    rows.append(_unit_rows(self._openvino.encode_text(tokens.numpy())))
                else:
                    rows.append(_to_numpy(self._model.encode_text(tokens.to(self.device))))
        return np.concatenate(rows)


DEFAULT_CONTEXT_LENGTH = 77
"""open_clip's context length when an architecture's text config names none (its Hugging Face text towers)."""
CHARS_PER_TOKEN_CAP = 16
"""Characters kept per token of context before tokenizing (a token averages 3 to 5): a 100 000-character message
costs what a short one does, and the tokenizer still cuts exactly at the context length."""


def clip_text(text: str, context_length: int) -> str:
    """The start of `text` that can reach the text tower; the tokenizer truncates exactly, this only bounds its work."""
    return text[: context_length * CHARS_PER_TOKEN_CAP]


def local_hf_source(source: str) -> str:
    """A Hugging Face tokenizer or config location as a local directory: an existing directory as it is, a hub id
    from the local cache only. Nothing is downloaded; a hub id that is not cached is a clear error."""
    if Path(source).is_dir():
        return source
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(source, local_files_only=True)
    except (LocalEntryNotFoundError, ValueError, OSError) as exc:
        raise FileNotFoundError(
            f"the CLIP text tower needs {source!r} (tokenizer, config.json), which is neither a local directory nor "
            "in the Hugging Face cache; download it once (README, Models) and point INFERENCE_CLIP_TOKENIZER at it"
        ) from exc


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
