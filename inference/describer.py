"""LLaVA-1.6 (LLaVA-NeXT) as the describer: one batched, greedy `generate` per group of images.

On a GPU the 7B model is loaded in 4-bit NF4 (about 5 GB instead of 15); on a CPU full precision is the
default, since 4-bit there saves memory but not time. Greedy decoding makes the description of a photo
reproducible, which the analysis cache and the tests rely on.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

import torch
from PIL import Image

from inference.vlm import generate_texts, generation_processor, photo_prompt

Quantization = Literal["auto", "nf4", "none"]


def resolve_quantization(quantization: Quantization, device: str) -> Literal["nf4", "none"]:
    """'auto' means NF4 where it pays off (CUDA), full precision elsewhere."""
    if quantization == "auto":
        return "nf4" if device.startswith("cuda") else "none"
    return quantization


class LlavaDescriber:
    """A LlavaNextForConditionalGeneration checkpoint and its processor, both from one local directory."""

    def __init__(
        self,
        model_path: str | Path,
        prompt: str,
        max_new_tokens: int = 160,
        quantization: Quantization = "auto",
        device: str = "cpu",
    ) -> None:
        self.model_path = Path(model_path)
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.quantization = resolve_quantization(quantization, device)
        self.name = f"{self.model_path.name}:{self.quantization}"
        self._model: Any = None
        self._processor: Any = None
        self._prompt_text = ""
        self._lock = threading.Lock()

    @property
    def dtype(self) -> torch.dtype:
        return torch.float16 if self.device.startswith("cuda") else torch.float32

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from transformers import BitsAndBytesConfig, LlavaNextForConditionalGeneration

            processor = generation_processor(self.model_path, "LLaVA")
            kwargs: dict[str, Any] = {"local_files_only": True, "dtype": self.dtype}
            if self.quantization == "nf4":
                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=self.dtype
                )
                kwargs["device_map"] = {"": self.device}
            model = LlavaNextForConditionalGeneration.from_pretrained(self.model_path, **kwargs)
            if self.quantization == "none":
                model.to(self.device)  # type: ignore[arg-type]  # transformers' stubs drop `self` from .to()
            model.eval()
            self._prompt_text = photo_prompt(processor, self.prompt)
            self._processor = processor
            self._model = model

    def describe(self, images: list[Image.Image]) -> list[str]:
        if not images:
            return []
        self.load()
        processor, model = self._processor, self._model
        inputs = processor(
            images=[image.convert("RGB") for image in images],
            text=[self._prompt_text] * len(images),
            return_tensors="pt",
            padding=True,
        ).to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return generate_texts(model, processor, inputs, self.max_new_tokens)
