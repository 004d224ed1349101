"""SmolVLM as the describer of the CPU profile: one batched, greedy `generate` per group of images.

SmolVLM-256M/500M-Instruct (Idefics3 in transformers: a SigLIP-base tower on 512 px tiles, a pixel shuffle that turns
a tile into 64 tokens, a SmolLM2 decoder) describe a photo in full precision in about 6 s (256M) or 11 s (500M) of
one CPU core, where LLaVA-1.6-7B would need some 6 to 8 minutes (benchmarks/results/cpu_describer.json). Their
processor would resize a photo to 2048 px and cut it into up to 4x4 tiles plus the whole photo: up to 17 tiles and
1088 image tokens, whose prefill alone costs three times a whole one-tile description. So by default the photo is one
tile (`tiles_per_side=1`, 64 tokens). Greedy decoding keeps a photo's description reproducible, which the analysis
cache and the tests rely on, as with LLaVA.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from inference.vlm import generate_texts, generation_processor, photo_prompt

DType = Literal["auto", "float32", "bfloat16"]
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
"""CPU features (as /proc/cpuinfo names them) that compute in bf16 natively: Zen 4 and later, Xeon Cooper Lake and
Sapphire Rapids and later. Elsewhere bf16 is emulated through fp32 and gains nothing."""


def cpu_flags() -> set[str]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux: assume nothing
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())


def resolve_dtype(dtype: DType, device: str) -> Literal["float32", "bfloat16"]:
    """'auto' means bf16 where the hardware computes in it (a GPU, or a CPU with native bf16), fp32 elsewhere.
    SmolVLM's model card recommends bf16 where supported; on this project's Zen 5 cores a description takes about
    1.5x less CPU time in bf16 than in fp32 (benchmarks/results/cpu_describer.json)."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda") or cpu_flags() & NATIVE_BF16_FLAGS:
        return "bfloat16"
    return "float32"


class SmolVLMDescriber:
    """An Idefics3/SmolVLM checkpoint and its processor, both from one local directory."""

    def __init__(
        self,
        model_path: str | Path,
        prompt: str,
        max_new_tokens: int = 160,
        tiles_per_side: int = 1,
        dtype: DType = "auto",
        device: str = "cpu",
        min_new_tokens: int = 0,
    ) -> None:
        if tiles_per_side < 1:
            raise ValueError("tiles_per_side must be at least 1")
        self.model_path = Path(model_path)
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens
        """Benchmarks only: random weights may end a description at once; a real model stops by itself."""
        self.tiles_per_side = tiles_per_side
        self.dtype_name = resolve_dtype(dtype, device)
        self.device = device
        self.name = f"{self.model_path.name}:{self.dtype_name}:tiles{tiles_per_side}"
        self._model: Any = None
        self._processor: Any = None
        self._prompt_text = ""
        self._image_kwargs: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.dtype_name == "bfloat16" else torch.float32

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import AutoModelForImageTextToText

            processor = generation_processor(self.model_path, "SmolVLM")
            model = AutoModelForImageTextToText.from_pretrained(
                self.model_path, local_files_only=True, dtype=self.dtype
            )
            model.to(self.device)  # type: ignore[arg-type]  # transformers' stubs drop `self` from .to()
            model.eval()
            tile = int(processor.image_processor.max_image_size["longest_edge"])
            self._image_kwargs = {
                # One tile: the processor squares the photo to the tower's size. More: the longest side becomes
                # that many tiles, and the whole photo is added as one more tile.
                "do_image_splitting": self.tiles_per_side > 1,
                "size": {"longest_edge": tile * self.tiles_per_side},
            }
            self._prompt_text = photo_prompt(processor, self.prompt)
            self._processor = processor
            self._model = model

    def inputs(self, images: list[Image.Image]) -> Any:
        """The model's inputs for these photos (one prompt each), as `describe` feeds them to `generate`."""
        self.load()
        inputs = self._processor(
            images=[[image.convert("RGB")] for image in images],
            text=[self._prompt_text] * len(images),
            return_tensors="pt",
            padding=True,
            **self._image_kwargs,
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def describe(self, images: list[Image.Image]) -> list[str]:
        if not images:
            return []
        inputs = self.inputs(images)
        return generate_texts(self._model, self._processor, inputs, self.max_new_tokens, self.min_new_tokens)
