"""Seconds per description of the CPU describer (SmolVLM) on this machine, at the real model sizes.

SmolVLM-256M-Instruct and -500M-Instruct are built here with their published configs and random weights: the same
tensors and compute as the real checkpoints, so the seconds are the real ones (the text is noise). Both are Idefics3:
a SigLIP base-patch16-512 tower (12 layers, 768 wide, 86 M parameters) sees 512 px tiles; a pixel shuffle (scale
factor 4) folds each tile's 1024 patches into 64 tokens for a SmolLM2 decoder (135 M: 30 layers, 576 wide, 9 heads,
3 KV heads; 360 M: 32 layers, 960 wide, 15 heads, 5 KV heads; both with a 49,280-token vocabulary and an untied
output layer). The tokenizer is the tests' byte-level BPE, trained so the prompt is as many tokens as SmolLM2 makes
of it. The photos are 1280 px procedural paintings (the size Telegram sends), through `SmolVLMDescriber` as the
service calls it.

Every description is forced to exactly `--tokens` new tokens (`min_new_tokens`), since random weights could stop
at any point. Each configuration is warmed up, then timed to the first token (the photo's tiles through the tower,
the prompt through the decoder) and to the last, `--repeats` times each (medians); decode tokens/s comes from the
difference. The first size other than tiny gets the full plan (both dtypes; then the first dtype at batch 4, at
4 tiles per side, and at 2 threads); other sizes only both dtypes at batch 1. The FLOPs per description are counted
from the configs and compared with LLaVA-1.6-Mistral-7B, the GPU profile's describer.

The machine is shared with other jobs: wall times grow with them (the load average is recorded per run). Two
torch threads suffer most, since each parallel region waits for its slowest thread; one thread is the stable
measure, and what one core of an otherwise busy machine gives.

    python -m benchmarks.bench_cpu_describer                       # tiny and 256M
    python -m benchmarks.bench_cpu_describer --sizes tiny 256m 500m
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import transformers

from benchmarks.common import ROOT
from inference.settings import ModelSettings
from inference.smolvlm_describer import NATIVE_BF16_FLAGS, SmolVLMDescriber, cpu_flags, resolve_dtype
from tests.factories import textured_artwork
from tests.model_factories import SMOLVLM_TINY_TEXT, SMOLVLM_TINY_VISION, make_smolvlm

SIGLIP_BASE_PATCH16_512 = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 512,
    "patch_size": 16,
}
SMOLLM2_135M = {
    "hidden_size": 576,
    "intermediate_size": 1536,
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "head_dim": 64,
    "max_position_embeddings": 8192,
}
SMOLLM2_360M = {
    "hidden_size": 960,
    "intermediate_size": 2560,
    "num_hidden_layers": 32,
    "num_attention_heads": 15,
    "num_key_value_heads": 5,
    "head_dim": 64,
    "max_position_embeddings": 8192,
}
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"vision": SMOLVLM_TINY_VISION, "text": SMOLVLM_TINY_TEXT, "scale_factor": 2, "vocab_size": None},
    "256m": {"vision": SIGLIP_BASE_PATCH16_512, "text": SMOLLM2_135M, "scale_factor": 4, "vocab_size": 49_280},
    "500m": {"vision": SIGLIP_BASE_PATCH16_512, "text": SMOLLM2_360M, "scale_factor": 4, "vocab_size": 49_280},
}
HUB_IDS = {"256m": "HuggingFaceTB/SmolVLM-256M-Instruct", "500m": "HuggingFaceTB/SmolVLM-500M-Instruct"}

# LLaVA-1.6-Mistral-7B (the GPU profile): CLIP ViT-L/14-336 on each tile, a 2-layer MLP projector, Mistral-7B.
# A 1280x960 photo gets the 672x672 grid: 4 tiles plus the whole photo, and 576 + 36 rows x (48 + 1) = 2340 image
# tokens after unpadding (LLaVA-NeXT keeps the rows the 4:3 photo covers, plus one newline token per row).
CLIP_VIT_L14_336 = {"hidden": 1024, "inter": 4096, "layers": 24, "tokens": 577}
MISTRAL_7B = {"hidden": 4096, "inter": 14336, "layers": 32, "heads": 32, "kv_heads": 8, "head_dim": 128, "vocab": 32064}
LLAVA_TILES = 5
LLAVA_IMAGE_TOKENS = 2340
LLAVA_PARAMETERS_B = 7.57


def vit_flops(tokens: int, hidden: int, inter: int, layers: int) -> float:
    """One tile through a ViT: the projections and MLP (2 FLOPs a multiply-add) and the attention over all tokens."""
    return layers * (2 * tokens * (4 * hidden * hidden + 2 * hidden * inter) + 4 * tokens * tokens * hidden)


def decoder_flops(
    tokens: int, context: int, *, hidden: int, inter: int, layers: int, heads: int, kv_heads: int, head_dim: int
) -> float:
    """`tokens` new positions through a GQA decoder (SwiGLU MLP) after `context` cached ones; no output layer."""
    linear = 2 * (2 * hidden * heads * head_dim + 2 * hidden * kv_heads * head_dim + 3 * hidden * inter)
    attended = sum(context + i + 1 for i in range(tokens))  # causal: position i sees everything before it
    return layers * (tokens * linear + 4 * heads * head_dim * attended)


@dataclass(frozen=True)
class Flops:
    vision: float
    prefill: float
    decode: float

    @property
    def total(self) -> float:
        return self.vision + self.prefill + self.decode

    def as_dict(self) -> dict[str, float]:
        gflops = {"vision": self.vision, "prefill": self.prefill, "decode": self.decode, "total": self.total}
        return {name: round(value / 1e9, 3) for name, value in gflops.items()}


def smolvlm_flops(size: dict[str, Any], tiles: int, prompt_tokens: int, new_tokens: int, vocab: int) -> Flops:
    """One description: every tile through SigLIP and the connector, the prompt (image tokens included) through
    SmolLM2 once, then one position per new token, each with the output layer."""
    vision, text, scale = size["vision"], size["text"], size["scale_factor"]
    patches = (vision["image_size"] // vision["patch_size"]) ** 2
    # The pixel shuffle turns scale² neighbouring patches into one token scale² times as wide; one linear maps it.
    connector = 2 * (patches // scale**2) * (vision["hidden_size"] * scale**2) * text["hidden_size"]
    per_tile = vit_flops(patches, vision["hidden_size"], vision["intermediate_size"], vision["num_hidden_layers"])
    shape = {
        "hidden": text["hidden_size"],
        "inter": text["intermediate_size"],
        "layers": text["num_hidden_layers"],
        "heads": text["num_attention_heads"],
        "kv_heads": text["num_key_value_heads"],
        "head_dim": text["head_dim"],
    }
    logits = 2 * text["hidden_size"] * vocab
    return Flops(
        vision=tiles * (per_tile + connector),
        prefill=decoder_flops(prompt_tokens, 0, **shape) + logits,
        decode=decoder_flops(new_tokens - 1, prompt_tokens, **shape) + (new_tokens - 1) * logits,
    )


def llava_flops(new_tokens: int, text_tokens: int = 60) -> Flops:
    clip, text = CLIP_VIT_L14_336, MISTRAL_7B
    projector = 2 * (clip["tokens"] - 1) * (clip["hidden"] * text["hidden"] + text["hidden"] * text["hidden"])
    shape = {k: text[k] for k in ("hidden", "inter", "layers", "heads", "kv_heads", "head_dim")}
    prompt = LLAVA_IMAGE_TOKENS + text_tokens
    logits = 2 * text["hidden"] * text["vocab"]
    return Flops(
        vision=LLAVA_TILES * (vit_flops(clip["tokens"], clip["hidden"], clip["inter"], clip["layers"]) + projector),
        prefill=decoder_flops(prompt, 0, **shape) + logits,
        decode=decoder_flops(new_tokens - 1, prompt, **shape) + (new_tokens - 1) * logits,
    )


def llava_estimate(model: dict[str, Any], llava: Flops, tokens: int) -> dict[str, Any]:
    """LLaVA-1.6-7B's cost on this CPU, extrapolated from what SmolVLM achieved here per second of CPU time (the
    machine is shared, so wall rates swing with the load): its tiles and prompt at the GFLOP/s SmolVLM's reached to
    the first token (compute-bound), its decode at the weight bytes per second SmolVLM's decode read (memory-bound:
    every new token reads all decoder weights), in bf16, since fp32 weights do not fit this machine's memory. An
    estimate, not a run; the 7B model's larger matrices may run somewhat faster per FLOP."""
    run = model["runs"][0]  # the first dtype at one tile, batch 1, the first thread count
    gflops = run["gflops_per_description"]
    prefill_rate = (gflops["vision"] + gflops["prefill"]) / run["first_token_cpu_s"]
    bytes_per_param = 4 if run["dtype"] == "float32" else 2
    read_rate = model["decoder_parameters_m"] * 1e6 * bytes_per_param * run["decode_tokens_per_cpu_s"]
    first_token = (llava.vision + llava.prefill) / 1e9 / prefill_rate
    per_token = LLAVA_PARAMETERS_B * 1e9 * 2 / read_rate
    return {
        "flops_ratio_llava_over_smolvlm": round(llava.total / (gflops["total"] * 1e9), 1),
        "smolvlm_run": {
            k: run[k]
            for k in ("dtype", "threads", "first_token_cpu_s", "cpu_s_per_description", "decode_tokens_per_cpu_s")
        },
        "achieved_gflops_per_cpu_s_to_first_token": round(prefill_rate, 1),
        "achieved_decode_weight_gb_per_cpu_s": round(read_rate / 1e9, 1),
        "llava_first_token_cpu_s_estimate": round(first_token),
        "llava_decode_tokens_per_cpu_s_estimate": round(1 / per_token, 2),
        "llava_cpu_s_per_description_estimate": round(first_token + (tokens - 1) * per_token),
    }


def build(workdir: Path, name: str) -> Path:
    root = workdir / f"smolvlm-{name}"
    if not (root / "config.json").is_file():
        make_smolvlm(root, **SIZES[name])
    return root


def timed(describer: SmolVLMDescriber, photos: list[Any], tokens: int, repeats: int) -> tuple[list[float], list[float]]:
    describer.max_new_tokens = describer.min_new_tokens = tokens
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        texts = describer.describe(photos)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        assert len(texts) == len(photos) and all(texts)
    return wall, cpu


def measure(root: Path, dtype: str, tiles: int, batch: int, tokens: int, repeats: int, prompt: str) -> dict[str, Any]:
    describer = SmolVLMDescriber(root, prompt, tiles_per_side=tiles, dtype=dtype)  # type: ignore[arg-type]
    describer.load()
    photos = [textured_artwork(seed, 1280) for seed in range(batch)]
    inputs = describer.inputs(photos)
    timed(describer, photos, 2, 1)  # warm-up: the first calls allocate and pick kernels
    first_wall, first_cpu = timed(describer, photos, 1, repeats)
    full_wall, full_cpu = timed(describer, photos, tokens, repeats)
    first, full = statistics.median(first_wall), statistics.median(full_wall)
    first_cpu_s, full_cpu_s = statistics.median(first_cpu), statistics.median(full_cpu)
    return {
        "dtype": dtype,
        "tiles_per_side": tiles,
        "batch": batch,
        "tiles_per_photo": int(inputs["pixel_values"].shape[1]),
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "new_tokens": tokens,
        "first_token_s": round(first, 2),
        "description_s": round(full, 2),
        "seconds_per_description": round(full / batch, 2),
        "decode_tokens_per_s": round(batch * (tokens - 1) / max(full - first, 1e-9), 1),
        "cpu_s_per_description": round(full_cpu_s / batch, 2),
        "first_token_cpu_s": round(first_cpu_s, 2),
        "decode_tokens_per_cpu_s": round(batch * (tokens - 1) / max(full_cpu_s - first_cpu_s, 1e-9), 1),
        "cpu_share_of_wall": round(full_cpu_s / full, 2),
        "wall_s_runs": [round(w, 2) for w in full_wall],
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "_describer": describer,
    }


def cpu_facts() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        names = [line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        model = names[0].split(":", 1)[1].strip() if names else model
    except OSError:
        pass
    flags = cpu_flags()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512f": "avx512f" in flags,
        "native_bf16": sorted(flags & NATIVE_BF16_FLAGS),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1),
        "gpu": torch.cuda.is_available(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def plan(
    dtypes: list[str], tiles: list[int], batches: list[int], threads: list[int], *, full: bool
) -> list[tuple[str, int, int, int]]:
    """(dtype, tiles_per_side, batch, threads): each dtype at one tile, batch 1 and the first thread count; with
    `full`, the first dtype also at the other batches, tile settings and thread counts, one change at a time."""
    runs = [(dtype, 1, 1, threads[0]) for dtype in dtypes]
    if full:
        runs += [(dtypes[0], 1, batch, threads[0]) for batch in batches if batch != 1]
        runs += [(dtypes[0], tile, 1, threads[0]) for tile in tiles if tile != 1]
        runs += [(dtypes[0], 1, 1, count) for count in threads[1:]]
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "256m"], choices=list(SIZES))
    parser.add_argument(
        "--dtypes",
        nargs="+",
        choices=["float32", "bfloat16"],
        help="the first is measured in every configuration (default: what 'auto' picks here, then the other)",
    )
    parser.add_argument("--tiles", type=int, nargs="+", default=[1, 4], help="tiles_per_side settings to compare")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=[1, os.cpu_count() or 1],
        help="torch threads; the first for every configuration, the others for the first dtype at batch 1",
    )
    parser.add_argument("--tokens", type=int, default=ModelSettings.model_fields["max_new_tokens"].default)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_describer.json")
    args = parser.parse_args()
    if not args.dtypes:
        chosen = resolve_dtype("auto", "cpu")
        args.dtypes = [chosen, "bfloat16" if chosen == "float32" else "float32"]
    full_size = next((name for name in args.sizes if name != "tiny"), args.sizes[0])
    prompt = ModelSettings.model_fields["prompt"].default
    load_before = os.getloadavg()
    started = time.perf_counter()
    models: dict[str, Any] = {}
    for name in args.sizes:
        root = build(args.workdir, name)
        runs: list[dict[str, Any]] = []
        parameters = decoder_parameters = 0
        full = name in {"tiny", full_size}
        for dtype, tiles, batch, threads in plan(args.dtypes, args.tiles, args.batches, args.threads, full=full):
            torch.set_num_threads(threads)
            run = {"threads": threads, **measure(root, dtype, tiles, batch, args.tokens, args.repeats, prompt)}
            describer = run.pop("_describer")
            model = describer._model
            parameters = sum(p.numel() for p in model.parameters())
            decoder_parameters = (
                sum(p.numel() for p in model.model.text_model.parameters())
                - sum(p.numel() for p in model.model.text_model.embed_tokens.parameters())
                + model.lm_head.weight.numel()
            )  # what one decode step reads: the layers and the output layer
            vocab = model.config.text_config.vocab_size
            flops = smolvlm_flops(SIZES[name], run["tiles_per_photo"], run["prompt_tokens"], args.tokens, vocab)
            run["gflops_per_description"] = flops.as_dict()
            runs.append(run)
            print(name, json.dumps(run))
        models[name] = {
            "checkpoint": HUB_IDS.get(name, "tests' tiny Idefics3 (tests/model_factories.make_tiny_smolvlm)"),
            "parameters_m": round(parameters / 1e6, 1),
            "decoder_parameters_m": round(decoder_parameters / 1e6, 1),
            "vision": SIZES[name]["vision"],
            "text": SIZES[name]["text"],
            "scale_factor": SIZES[name]["scale_factor"],
            "runs": runs,
        }
    llava = llava_flops(args.tokens)
    comparison: dict[str, Any] = {
        "llava_1_6_mistral_7b": {
            "parameters_b": LLAVA_PARAMETERS_B,
            "tiles": LLAVA_TILES,
            "image_tokens": LLAVA_IMAGE_TOKENS,
            "gflops_per_description": llava.as_dict(),
            "memory_note": "fp32 weights are 30 GB, more than this machine's memory; bf16 15 GB, NF4 about 5 GB",
        }
    }
    for name in ("256m", "500m"):
        if name in models:
            comparison[f"from_smolvlm_{name}"] = llava_estimate(models[name], llava, args.tokens)
    result = {
        "what": "seconds per description of SmolVLM on this CPU; real-size configs with random weights",
        "prompt": prompt,
        "photo": "1280x960 procedural painting (tests.factories.textured_artwork)",
        "models": models,
        "comparison": comparison,
        "repeats": args.repeats,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": cpu_facts(),
        "load_average": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "bench_wall_s": round(time.perf_counter() - started),
        "command": "python -m benchmarks.bench_cpu_describer "
        + " ".join(
            f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k not in {"workdir", "out"}
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
