"""Describer throughput on one GPU: LLaVA-1.6 Mistral-7B in 4-bit, transformers batched against one at a time,
and the same model behind a vLLM server, in descriptions/s and generated tokens/s.

(a) transformers: the service's own `LlavaDescriber` (NF4 through bitsandbytes, one greedy `generate` per batch) at
    batch 1 (one photo at a time), 4, 8, 16 and 32.
(b) vLLM: the service's own `VllmDescriber` against a running vLLM server (continuous batching, bitsandbytes 4-bit)
    with 1, 8 and 32 photos in flight.

Same GPU, same prompt, same photos (phone-photo sizes after the service's decode: 1024x768, 768x1024, 1024x1024,
1024x576, so LLaVA-NeXT cuts each into its real tile grid), same `--max-new-tokens` (160, the service's default).
Every description is forced to that full length (transformers: `min_new_tokens`; vLLM: `ignore_eos` and
`min_tokens`), so random weights, which stop at random, cost what real ones cost at the cap.

Without `--checkpoint`, the model is LLaVA-1.6 Mistral-7B at its real size with random weights: the published
llava-hf/llava-v1.6-mistral-7b-hf configuration (Mistral-7B-Instruct-v0.2 text model: 32 layers, width 4096, FFN
14336, 32 heads over 8 KV heads, vocabulary 32064, rope theta 1e6, no sliding window; CLIP ViT-L/14-336 vision
tower: 24 layers, width 1024, FFN 4096, 16 heads; grid pinpoints 336x672 ... 336x1008; image token 32000), about
7.57 B parameters, saved in float16 with `save_pretrained` (15 GB) so that both backends load the same files. No
hub is reached: the tokenizer is a word-level one made here with the real vocabulary size and the real special-token
ids (<s> 1, </s> 2, <image> 32000), and the prompt in LLaVA-1.6 Mistral's own "[INST] <image>\\n... [/INST]" form:
the thousands of image tokens per photo are exact, the few dozen prompt tokens close.

On a GPU machine with vLLM (its own environment: vLLM pins its own torch):

    # 1. write the random real-size checkpoint (or pass --checkpoint DIR of the real weights instead)
    python -m benchmarks.bench_describer_gpu --build-only --model-dir /models/llava-random
    # 2. start vLLM on half the GPU, from that folder (the official image; or `pip install vllm` in its own venv
    #    and run the same `vllm serve` arguments)
    docker run -d --gpus all -p 8001:8000 -v /models:/models vllm/vllm-openai:latest \\
        --model /models/llava-random --served-model-name llava-random --quantization bitsandbytes \\
        --max-model-len 4096 --gpu-memory-utilization 0.5
    # 3. once `curl http://127.0.0.1:8001/v1/models` answers: both backends, on the same GPU
    python -m benchmarks.bench_describer_gpu --model-dir /models/llava-random \\
        --vllm-url http://127.0.0.1:8001/v1 --vllm-model llava-random

Without `--vllm-url` the vLLM part is skipped (and says so in the JSON); `--skip-transformers` measures vLLM alone.
The results go to benchmarks/results/describer_gpu.json.

On this workplace's lent H200 (no network; its image has torch and transformers but neither bitsandbytes nor vLLM,
whose wheel is hundreds of MB, far above the 64 MiB that may be carried, and pins its own torch) only (a) can run:
copy bitsandbytes' Python files with its libbitsandbytes_cpu.so and libbitsandbytes_cuda130.so (about 5 MB) into an
ignored folder `.device/pylib/bitsandbytes`, carry `.device`, and run `PYTHONPATH=.device/pylib:. PYTHONUNBUFFERED=1
python3 -m benchmarks.bench_describer_gpu --model-dir /tmp/llava-random --out $OUT/describer_gpu.json` (not run yet:
no machine was lent when this was written, so its duration is unknown; give it the whole 600 s).

`--smoke` checks the script itself on a CPU in a minute or two: the same builder shrunk to 2 narrow layers per
tower (the real image size, tile grid, vocabulary and so the real tokens per photo) through the same
LlavaDescriber code, the vLLM part against the tests' stand-in server (tests/vllm_stub.py), and the real-size
configuration counted on the meta device. Its timings measure nothing; it writes
benchmarks/results/describer_gpu_smoke.json, marked as a smoke run.

    python -m benchmarks.bench_describer_gpu --smoke
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inference.describer import LlavaDescriber, Quantization
from inference.vllm_describer import VllmDescriber

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# The service's default prompt (inference.settings.ModelSettings.prompt), spelled out: importing the settings
# needs pydantic-settings, which a bare GPU image may lack. The smoke run checks that the two are the same.
PROMPT = (
    "Describe the artwork's genre, style, subject, colors and mood in detail, "
    "in a few sentences, as an art guide would."
)
PHOTO_SIZES = [(1024, 768), (768, 1024), (1024, 1024), (1024, 576)]
"""Phone photos after the service's decode (longest side at most 1024 px), in the usual aspect ratios."""

# llava-hf/llava-v1.6-mistral-7b-hf's config.json, value by value.
GRID_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
VISION: dict[str, Any] = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-5,
}
TEXT: dict[str, Any] = {
    "vocab_size": 32064,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-5,
    "rope_theta": 1_000_000.0,
    "sliding_window": None,
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
}
IMAGE_TOKEN_ID, PAD_TOKEN_ID = 32000, 32001
CHAT_TEMPLATE = (  # LLaVA-1.6 Mistral's prompt format: "[INST] <image>\n{prompt} [/INST]"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}[INST] "
    "{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<image>\n{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %} [/INST]"
    "{% else %}{% for item in message['content'] %}{{ item['text'] }}{% endfor %}{% endif %}"
    "{% endfor %}"
)
MARKER = ".artmatch-random-llava.json"


# --- the model -----------------------------------------------------------------------------------------------


def real_size_config(shrink: bool = False) -> Any:
    """LlavaNextConfig of llava-v1.6-mistral-7b-hf (no weights); `shrink` keeps the layout, the image size, the
    vocabulary and so every token count, with 2 narrow layers per tower (the smoke run's model)."""
    from transformers import CLIPVisionConfig, LlavaNextConfig, MistralConfig

    vision, text = dict(VISION), dict(TEXT)
    if shrink:
        vision.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
        vision.update(projection_dim=64)
        text.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        text.update(num_key_value_heads=2)
    return LlavaNextConfig(
        vision_config=CLIPVisionConfig(**vision),
        text_config=MistralConfig(**text, pad_token_id=PAD_TOKEN_ID),
        image_token_index=IMAGE_TOKEN_ID,
        image_grid_pinpoints=GRID_PINPOINTS,
        projector_hidden_act="gelu",
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        image_seq_length=(VISION["image_size"] // VISION["patch_size"]) ** 2,
        tie_word_embeddings=False,
    )


def real_size_processor() -> Any:
    """LLaVA-NeXT's processor with the real image processing and a word-level tokenizer of the real vocabulary
    size and special-token ids (the real sentencepiece model is on no reachable registry)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlavaNextImageProcessor, LlavaNextProcessor, PreTrainedTokenizerFast

    vocab: dict[str, int] = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for word in re.findall(r"\w+|[^\w\s]+", PROMPT + " [INST] [/INST] painting portrait landscape oil canvas"):
        vocab.setdefault(word, len(vocab))
    while len(vocab) < IMAGE_TOKEN_ID:
        vocab[f"w{len(vocab)}"] = len(vocab)
    vocab["<image>"], vocab["<pad>"] = IMAGE_TOKEN_ID, PAD_TOKEN_ID
    while len(vocab) < TEXT["vocab_size"]:
        vocab[f"x{len(vocab)}"] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        additional_special_tokens=["<image>"],
    )
    size = VISION["image_size"]
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, image_grid_pinpoints=GRID_PINPOINTS
    )
    return LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=VISION["patch_size"],
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        image_token="<image>",
        num_additional_image_tokens=1,  # CLIP's CLS token
    )


def count_parameters() -> int:
    """The real-size model's parameters, counted on the meta device (no memory)."""
    from transformers import LlavaNextForConditionalGeneration

    with torch.device("meta"):
        model = LlavaNextForConditionalGeneration(real_size_config())
    return sum(p.numel() for p in model.parameters())


def build_random_llava(root: Path, device: str, shrink: bool = False) -> Path:
    """The real-size model (or its shrunk copy) with seeded random weights, saved in float16 with its processor;
    skipped when a complete copy is already there."""
    if (root / MARKER).is_file():
        return root
    from transformers import LlavaNextForConditionalGeneration

    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float16)  # initialise in half precision: 15 GB, not 30
    try:
        with torch.device(device):
            model = LlavaNextForConditionalGeneration(real_size_config(shrink)).eval()
    finally:
        torch.set_default_dtype(default)
    model.generation_config.pad_token_id = PAD_TOKEN_ID
    model.save_pretrained(root, max_shard_size="4GB")
    parameters = sum(p.numel() for p in model.parameters())
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    real_size_processor().save_pretrained(root)
    facts = {"parameters": parameters, "seconds": round(time.perf_counter() - started, 1), "seed": 0}
    (root / MARKER).write_text(json.dumps(facts, indent=2), encoding="utf-8")
    print(f"random LLaVA-NeXT ({parameters / 1e9:.3f} B parameters) written to {root}", flush=True)
    return root


def image_tokens_per_photo(sizes: Sequence[tuple[int, int]]) -> dict[str, int]:
    """Prompt tokens of one photo with the real processor: what the prefill of each description costs."""
    processor = real_size_processor()
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    return {
        f"{w}x{h}": int(processor(images=[photo(w, h, 0)], text=[text], return_tensors="pt")["input_ids"].shape[1])
        for w, h in sizes
    }


# --- photos and timing ---------------------------------------------------------------------------------------


def photo(width: int, height: int, seed: int) -> Image.Image:
    """A smooth colour field with texture: compresses like a photo (a JPEG of pure noise would be 3x larger)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [
        127 + 100 * np.sin(x / rng.uniform(40, 200) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(40, 200))
        for _ in range(3)
    ]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 8, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def photos(count: int, sizes: Sequence[tuple[int, int]]) -> list[Image.Image]:
    return [photo(*sizes[i % len(sizes)], seed=i) for i in range(count)]


@dataclass
class Run:
    level: int
    """Batch size (transformers) or requests in flight (vLLM)."""
    photos: int
    seconds: list[float]
    tokens: int

    def row(self, key: str) -> dict[str, Any]:
        median = statistics.median(self.seconds)
        return {
            key: self.level,
            "photos": self.photos,
            "seconds": [round(s, 3) for s in self.seconds],
            "median_s": round(median, 3),
            "descriptions_per_s": round(self.photos / median, 3),
            "tokens_per_s": round(self.tokens / median, 1),
            "generated_tokens": self.tokens,
            "seconds_per_description": round(median / self.photos, 3),
        }


def timed(fn: Callable[[], int], repeats: int) -> tuple[list[float], int]:
    """Wall seconds of each repeat, and the tokens the last one generated."""
    seconds, tokens = [], 0
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return seconds, tokens


# --- the two backends ----------------------------------------------------------------------------------------


def bench_transformers(
    model_dir: Path,
    *,
    device: str,
    quantization: Quantization,
    batches: Sequence[int],
    sizes: Sequence[tuple[int, int]],
    max_new_tokens: int,
    min_photos: int,
    repeats: int,
) -> dict[str, Any]:
    """The service's LlavaDescriber, each batch size over the same photos (at least one full batch)."""
    describer = LlavaDescriber(model_dir, PROMPT, max_new_tokens, quantization=quantization, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()  # the build of a random checkpoint is not the describer's memory
    started = time.perf_counter()
    describer.load()
    load_s = time.perf_counter() - started
    model = describer._model
    model.generation_config.min_new_tokens = max_new_tokens  # a random model stops at random: run to the cap
    generated = [0]
    generate = model.generate

    def counting_generate(**inputs: Any) -> Any:
        output = generate(**inputs)
        generated[0] += int(output.shape[0] * (output.shape[1] - inputs["input_ids"].shape[1]))
        return output

    model.generate = counting_generate
    describer.describe(photos(1, sizes))  # warm-up: kernels chosen, 4-bit state built
    runs = []
    for batch in batches:
        group = photos(max(batch, min_photos), sizes)

        def once(batch: int = batch, group: list[Image.Image] = group) -> int:
            generated[0] = 0
            for at in range(0, len(group), batch):
                describer.describe(group[at : at + batch])
            return generated[0]

        seconds, tokens = timed(once, repeats)
        runs.append(Run(batch, len(group), seconds, tokens))
        print(f"transformers batch {batch}: {runs[-1].row('batch')}", flush=True)
    memory = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    rows = [run.row("batch") for run in runs]
    alone = next((row for row in rows if row["batch"] == 1), None)
    return {
        "backend": "transformers LlavaNextForConditionalGeneration.generate (inference.describer.LlavaDescriber)",
        "quantization": describer.quantization,
        "device": device,
        "load_s": round(load_s, 1),
        "peak_gpu_memory_gib": round(memory, 2) if memory is not None else None,
        "runs": rows,
        "speedup_over_one_at_a_time": {
            str(row["batch"]): round(row["descriptions_per_s"] / alone["descriptions_per_s"], 2) for row in rows
        }
        if alone
        else {},
    }


def bench_vllm(
    url: str,
    model: str,
    *,
    api_key: str | None,
    levels: Sequence[int],
    sizes: Sequence[tuple[int, int]],
    max_new_tokens: int,
    photos_per_level: int,
    min_photos: int,
    repeats: int,
) -> dict[str, Any]:
    """The service's VllmDescriber with `level` requests in flight, over photos_per_level x level photos (so the
    server's running batch stays full for most of the run)."""
    forced = {"ignore_eos": True, "min_tokens": max_new_tokens}
    runs = []
    server = _vllm_facts(url, api_key)
    for level in levels:
        describer = VllmDescriber(
            url, model, PROMPT, max_new_tokens, api_key=api_key, concurrency=level, timeout_s=600, extra_body=forced
        )
        describer.load()
        describer.describe(photos(1, sizes))  # warm-up
        group = photos(max(min_photos, photos_per_level * level), sizes)

        def once(describer: VllmDescriber = describer, group: list[Image.Image] = group) -> int:
            before = describer.completion_tokens
            describer.describe(group)
            return describer.completion_tokens - before

        seconds, tokens = timed(once, repeats)
        describer.close()
        runs.append(Run(level, len(group), seconds, tokens))
        print(f"vLLM {level} in flight: {runs[-1].row('concurrency')}", flush=True)
    return {
        "backend": "vLLM OpenAI API /chat/completions (inference.vllm_describer.VllmDescriber)",
        "url": url,
        "model": model,
        "server": server,
        "sampling": {"temperature": 0, "max_tokens": max_new_tokens, **forced},
        "runs": [run.row("concurrency") for run in runs],
    }


def _vllm_facts(url: str, api_key: str | None) -> dict[str, Any]:
    """What the server says about itself (its model list; vLLM's /version), for the record."""
    facts: dict[str, Any] = {}
    root = url.removesuffix("/").removesuffix("/v1")
    for key, address in (("models", f"{url.rstrip('/')}/models"), ("version", f"{root}/version")):
        request = urllib.request.Request(address, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                facts[key] = json.loads(response.read())
        except (OSError, ValueError) as exc:
            facts[key] = f"unavailable: {type(exc).__name__}"
    return facts


def compare(transformers: dict[str, Any] | None, vllm: dict[str, Any] | None) -> dict[str, Any]:
    """At each level both ran: vLLM's descriptions/s over transformers' (batch = requests in flight)."""
    if not transformers or not vllm or "runs" not in vllm:
        return {}
    batched = {row["batch"]: row for row in transformers["runs"]}
    out = {}
    for row in vllm["runs"]:
        other = batched.get(row["concurrency"])
        if other is not None:
            out[str(row["concurrency"])] = {
                "transformers_descriptions_per_s": other["descriptions_per_s"],
                "vllm_descriptions_per_s": row["descriptions_per_s"],
                "vllm_over_transformers": round(row["descriptions_per_s"] / other["descriptions_per_s"], 2),
            }
    return out


# --- the run -------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    facts: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }
    try:
        import transformers

        facts["transformers"] = transformers.__version__
    except ImportError:
        pass
    try:
        import bitsandbytes

        facts["bitsandbytes"] = bitsandbytes.__version__
    except ImportError:
        facts["bitsandbytes"] = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts["gpu"] = props.name
        facts["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        facts["cuda"] = torch.version.cuda
    else:
        facts["gpu"] = None
    return facts


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_describer_gpu", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--smoke", action="store_true", help="tiny model on the CPU and the stand-in vLLM server")
    parser.add_argument("--checkpoint", type=Path, help="a real LLaVA-1.6 checkpoint folder (default: random)")
    parser.add_argument("--model-dir", type=Path, help="where the random real-size checkpoint is written")
    parser.add_argument("--build-only", action="store_true", help="write the random checkpoint and stop")
    parser.add_argument("--vllm-url", help="the vLLM server's OpenAI API, with /v1 (default: skip vLLM)")
    parser.add_argument("--vllm-model", help="the name vLLM serves the model as (default: the model folder)")
    parser.add_argument("--vllm-api-key")
    parser.add_argument("--skip-transformers", action="store_true")
    parser.add_argument("--batches", default=None, help="transformers batch sizes (default 1,4,8,16,32)")
    parser.add_argument("--concurrency", default="1,8,32", help="vLLM requests in flight")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="default 160 (the service's), smoke 8")
    parser.add_argument("--min-photos", type=int, default=8, help="photos per measurement at least")
    parser.add_argument("--photos-per-level", type=int, default=4, help="vLLM: photos = this x requests in flight")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    smoke = args.smoke
    device = "cpu" if smoke else "cuda"
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU machine, or check the script with --smoke")
    max_new_tokens = args.max_new_tokens or (8 if smoke else 160)
    batches = [int(b) for b in (args.batches or ("1,2,4" if smoke else "1,4,8,16,32")).split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    sizes = PHOTO_SIZES
    workdir = Path(tempfile.gettempdir()) / "artmatch-bench-describer"

    if smoke:
        model_dir = build_random_llava(workdir / "llava-v1.6-mistral-shrunk", device, shrink=True)
        source = (
            "the real-size builder shrunk to 2 layers of width 64 per tower (real image size, tile grid, vocabulary "
            "and token counts), random weights"
        )
    elif args.checkpoint is not None:
        model_dir, source = args.checkpoint, f"checkpoint {args.checkpoint}"
    else:
        model_dir = build_random_llava(args.model_dir or workdir / "llava-v1.6-mistral-7b-random", device)
        source = "llava-v1.6-mistral-7b-hf at its real size, random weights (seed 0), float16 on disk"
    if args.build_only:
        return {"model_dir": str(model_dir)}

    result: dict[str, Any] = {
        "benchmark": "describer_gpu",
        "smoke": smoke,
        "note": (
            "SMOKE RUN, NOT A MEASUREMENT: a tiny LLaVA-NeXT (2 layers of width 64) on a 2-core CPU and a stand-in "
            "vLLM server with no model (tests/vllm_stub.py); it shows that the script runs end to end, nothing "
            "about GPU throughput or about vLLM against transformers."
            if smoke
            else "Measured on one GPU; every description forced to max_new_tokens."
        ),
        "command": "python -m benchmarks.bench_describer_gpu " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "model": {"source": source, "dir": str(model_dir)},
        "prompt": PROMPT,
        "max_new_tokens": max_new_tokens,
        "photo_sizes": [f"{w}x{h}" for w, h in sizes],
        "repeats": args.repeats,
    }
    if smoke:  # the real-size model, checked without building it
        from inference.settings import ModelSettings

        assert ModelSettings.model_fields["prompt"].default == PROMPT, "PROMPT differs from the service's prompt"
        result["real_size_check"] = {
            "parameters": count_parameters(),
            "prompt_tokens_per_photo": image_tokens_per_photo(PHOTO_SIZES),
        }

    transformers_result = None
    if not args.skip_transformers:
        transformers_result = bench_transformers(
            model_dir,
            device=device,
            quantization="none" if smoke else "nf4",
            batches=batches,
            sizes=sizes,
            max_new_tokens=max_new_tokens,
            min_photos=4 if smoke else args.min_photos,
            repeats=args.repeats,
        )
    result["transformers"] = transformers_result or {"skipped": "--skip-transformers"}

    vllm_result: dict[str, Any]
    options: dict[str, Any] = {
        "levels": levels,
        "sizes": sizes,
        "max_new_tokens": max_new_tokens,
        "photos_per_level": args.photos_per_level,
        "min_photos": 4 if smoke else args.min_photos,
        "repeats": args.repeats,
    }
    if smoke and args.vllm_url is None:
        from tests.vllm_stub import VllmStub

        with VllmStub(model="tiny-llava", delay_s=0.02) as stub:
            vllm_result = bench_vllm(stub.url, "tiny-llava", api_key=None, **options)
        vllm_result["server"] = "tests/vllm_stub.py: a stand-in that answers after 20 ms, no model"
    elif args.vllm_url is None:
        vllm_result = {"skipped": "no --vllm-url given: start a vLLM server (see the docstring) to measure it"}
    else:
        vllm_result = bench_vllm(args.vllm_url, args.vllm_model or model_dir.name, api_key=args.vllm_api_key, **options)
    result["vllm"] = vllm_result
    ratios = compare(transformers_result, vllm_result)
    result["vllm_over_transformers"] = {"smoke_not_a_comparison": ratios} if smoke else ratios

    out = args.out or RESULTS / ("describer_gpu_smoke.json" if smoke else "describer_gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written {out}", flush=True)
    return result


if __name__ == "__main__":
    main()
