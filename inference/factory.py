"""Settings to models: the one place that chooses the device and which wrapper class serves each role."""

from __future__ import annotations

import torch

from inference.describer import LlavaDescriber
from inference.embedders import ClipEmbedder, SentenceEmbedder
from inference.models import Describer, Models, Translator
from inference.settings import ModelSettings
from inference.smolvlm_describer import SmolVLMDescriber
from inference.threads import ThreadPlan
from inference.translator import MarianTranslator
from inference.vllm_describer import VllmDescriber


def pick_device(requested: str) -> str:
    """'auto' means CUDA when present; asking for CUDA without one fails here, not in the first request."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("INFERENCE_DEVICE=cuda but no CUDA device is available")
    return requested


def build_describer(settings: ModelSettings, device: str) -> Describer:
    if settings.describer == "llava":
        if settings.llava_path is None:
            raise ValueError(
                "INFERENCE_LLAVA_PATH must be set to a local LLaVA-1.6 checkpoint directory "
                "(see the Models section of the README)"
            )
        return LlavaDescriber(
            settings.llava_path,
            prompt=settings.prompt,
            max_new_tokens=settings.max_new_tokens,
            quantization=settings.quantization,
            device=device,
        )
    if settings.describer == "vllm":
        if not settings.vllm_url:
            raise ValueError(
                "INFERENCE_VLLM_URL must be set to the vLLM server's OpenAI API (http://vllm:8000/v1) "
                "when INFERENCE_DESCRIBER=vllm"
            )
        api_key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key is not None else None
        return VllmDescriber(
            settings.vllm_url,
            settings.vllm_model,
            prompt=settings.prompt,
            max_new_tokens=settings.max_new_tokens,
            api_key=api_key or None,
            concurrency=settings.vllm_concurrency,
            timeout_s=settings.vllm_timeout_s,
            connect_timeout_s=settings.vllm_connect_timeout_s,
        )
    if settings.describer == "smolvlm":
        return SmolVLMDescriber(
            settings.smolvlm_path,
            prompt=settings.prompt,
            max_new_tokens=settings.max_new_tokens,
            tiles_per_side=settings.smolvlm_tiles_per_side,
            dtype=settings.smolvlm_dtype,
            device=device,
        )
    raise ValueError(f"unknown describer {settings.describer!r}")


def build_translators(settings: ModelSettings, device: str) -> dict[str, Translator]:
    """One MarianMT per configured language; nothing is loaded here."""
    return {
        language: MarianTranslator(
            model,
            language,
            device=device,
            num_beams=settings.translation_num_beams,
            batch_size=settings.translation_batch_size,
        )
        for language, model in settings.translation_models.items()
    }


def build_clip(settings: ModelSettings, device: str, threads: int | None = None) -> ClipEmbedder:
    """CLIP on the runtime the settings ask for (INFERENCE_CLIP_RUNTIME; 'auto' decides at load)."""
    return ClipEmbedder(
        settings.clip_arch,
        settings.clip_weights,
        device,
        settings.clip_config,
        tokenizer=settings.clip_tokenizer,
        runtime=settings.clip_runtime,
        precision=settings.clip_precision,
        threads=threads,
        cache_dir=settings.clip_cache_dir,
    )


def build_models(settings: ModelSettings, threads: ThreadPlan | None = None) -> Models:
    """The model bundle, not loaded yet: `Models.load()` does the slow part when the caller is ready. The service
    passes its `threads` split; a gallery build leaves every core to CLIP."""
    device = pick_device(settings.device)
    return Models(
        clip=build_clip(settings, device, threads.clip if threads is not None else None),
        text=SentenceEmbedder(settings.text_model, device),
        describer=build_describer(settings, device),
        translators=build_translators(settings, device),
    )
