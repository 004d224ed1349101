"""Seconds to translate one description into Russian on this CPU, with a MarianMT of the real opus-mt-en-ru size.

The model has opus-mt-en-ru's shape (d_model 512, 6 encoder + 6 decoder layers, 8 heads, FFN 2048, a 62,518-entry
vocabulary: about 77 M parameters) and random weights, so the compute is the real one. The input is a realistic
120-word art-guide description, split into sentences and batched by `MarianTranslator` exactly as the service
does. A random model never says </s>, so every sentence decodes up to the translator's cap, which is set here to
1.3x the sentence's input tokens: roughly what a real English->Russian translation produces (and where a real
model stops by itself). The English sentencepiece model (BPE) is trained on the description's own sentences too,
sized so the description comes to about 1.3 tokens a word (165 tokens), as in the real 32k vocabulary, where
common words are whole pieces and rarer ones ("poplars", "meditative") split.

    python -m benchmarks.bench_translate --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import ROOT
from inference.translator import MarianTranslator, split_sentences
from tests.model_factories import make_marian

DESCRIPTION = (
    "This painting is an Impressionist landscape in oil on canvas. It shows a quiet river bend at dusk, with a "
    "small wooden boat moored near the reeds and a row of tall poplars on the far bank. The sky takes up most of "
    "the picture, painted in loose, quick brushstrokes of pale pink, lilac and gold that are reflected in the still "
    "water below. The colours are soft and warm, and the light seems to fade as you look at it. There are no "
    "people in the scene, which gives it a calm, almost meditative mood. The artist cares less about detail than "
    "about the changing effects of light and air, a typical concern of the Impressionists at the end of the "
    "nineteenth century."
)
OPUS_MT_EN_RU = {"d_model": 512, "layers": 6, "heads": 8, "ffn": 2048, "vocab_size": 62518}
OUTPUT_RATIO = 1.3


def build(workdir: Path) -> Path:
    root = workdir / "marian-opus-mt-en-ru-size"
    if not (root / "config.json").is_file():
        sentences = tuple(split_sentences(DESCRIPTION)) * 20  # frequent enough to become whole pieces
        make_marian(root, **OPUS_MT_EN_RU, spm_vocab=350, spm_type="bpe", extra_source_lines=sentences)
    return root


def measure(translator: MarianTranslator, repeats: int) -> dict[str, float]:
    """Wall seconds, and this process's CPU seconds: on a machine shared with other work the wall time grows with
    the load, while the CPU time of a one-thread run is what the translation costs an idle core."""
    translator.translate([DESCRIPTION])  # warm-up: first calls allocate and pick kernels
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        translator.translate([DESCRIPTION])
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "wall_median_s": round(statistics.median(wall), 2),
        "wall_min_s": round(min(wall), 2),
        "cpu_median_s": round(statistics.median(cpu), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, torch.get_num_threads()])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "translate.json")
    args = parser.parse_args()
    root = build(args.workdir)
    translator = MarianTranslator(root, "ru", length_ratio=OUTPUT_RATIO)
    translator.load()
    sentences = split_sentences(DESCRIPTION)
    input_tokens = [len(ids) for ids in translator._tokenizer(sentences).input_ids]
    load_before = os.getloadavg()[0]
    runs = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for beams in args.beams:
            translator.num_beams = beams
            runs.append({"threads": threads, "num_beams": beams, **measure(translator, args.repeats)})
            print(runs[-1])
    result = {
        "model": "MarianMTModel at opus-mt-en-ru size, random weights",
        "parameters_m": round(sum(p.numel() for p in translator._model.parameters()) / 1e6, 1),
        "text": {
            "words": len(DESCRIPTION.split()),
            "sentences": len(sentences),
            "input_tokens": sum(input_tokens),
            "output_tokens_cap": sum(translator.output_cap(n) for n in input_tokens),
            "output_ratio": OUTPUT_RATIO,
        },
        "runs": runs,
        "repeats": args.repeats,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "command": "python -m benchmarks.bench_translate",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
