"""Latency of search by words, by colour, and of the look, with the default multilingual CLIP at its real size.

    python -m benchmarks.bench_search [--works 60] [--queries 40] [--out benchmarks/results/search.json]

The real inference service (`python -m inference.serve`, its own process, loopback HTTP) over a gallery of
`--works` real paintings from ../shared/gallery, built by the real gallery build with open_clip's
`xlm-roberta-base-ViT-B-32` at its real size with random weights (the compute of the real model:
`benchmarks.common.multilingual_model_settings`), the real MiniLM and the tiny LLaVA-Next. One client, one request
at a time, 3 warm-up calls per kind, then `--queries` timed calls each of:

- `POST /v1/search/text` with Russian queries, with English queries, and with a 4000-character query;
- `POST /v1/search/color` with hex codes and colour names (English and Russian);
- `POST /v1/look` with simulated phone photos (1280 px) of gallery works, a different one each time.

Then, with the service stopped, the towers alone in this process (`ClipEmbedder.embed_texts` on one query,
`embed_images` on one photo), so the figures say where a search's time goes. Client-side wall time; the service's
own `timings_ms` are reported next to it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from PIL import Image

from benchmarks.common import (
    MULTILINGUAL_TOKENIZER_NOTE,
    ROOT,
    SHARED_GALLERY,
    gallery_of_paintings,
    multilingual_model_settings,
    percentiles,
    shared_paintings,
)
from inference.embedders import ClipEmbedder
from inference.identify.synthetic import photograph
from tests.service_process import ServiceProcess

TOKEN = "bench-search-token"
WARM_UP = 3
RUSSIAN = (
    "рыцарь на белом коне",
    "бурное море ночью",
    "портрет дамы с горностаем",
    "зимний лес под снегом",
    "натюрморт с фруктами и вином",
    "девушка с жемчужной серёжкой",
    "закат над рекой",
    "старый город в дождь",
    "цветы в вазе на окне",
    "корабли в гавани на рассвете",
)
ENGLISH = (
    "stormy sea at night",
    "a knight on a white horse",
    "sunflowers in a vase",
    "portrait of an old man with a beard",
    "winter landscape with skaters",
    "a quiet village by the river",
    "still life with a skull",
    "dancers in blue dresses",
    "a garden full of flowers in spring",
    "ships in a harbour at dawn",
)
COLOURS = (
    "#1e3a8a",
    "red",
    "красный",
    "ochre",
    "тёмно-синий",
    "#c00",
    "бирюзовый",
    "deep blue",
    "охра",
    "1e3a8a",
)
LONG_QUERY_CHARS = 4000
PHOTOGRAPHED_WORKS = 8


def long_queries(count: int) -> list[str]:
    """`count` different 4000-character texts (Russian and English sentences, rotated), like a pasted page."""
    sentences = [*RUSSIAN, *ENGLISH]
    texts = []
    for i in range(count):
        rotated = sentences[i % len(sentences) :] + sentences[: i % len(sentences)]
        text = ""
        while len(text) < LONG_QUERY_CHARS:
            text += ". ".join(rotated) + ". "
        texts.append(text[:LONG_QUERY_CHARS])
    return texts


def phone_photos(paintings: list[Path], count: int) -> list[bytes]:
    """`count` different simulated phone photos (1280 px JPEG) of gallery works, a new shot each time: the service
    reuses the CLIP pass of a photo it saw in the last 30 s (LOOK_REUSE_SECONDS), so a repeated photo would time
    that reuse, not the look."""
    rng = np.random.default_rng(20_261_128)
    works = []
    for path in paintings[:PHOTOGRAPHED_WORKS]:
        with Image.open(path) as source:
            works.append(np.asarray(source.convert("RGB")))
    return [photograph(rng, works[i % len(works)], photo_side=1280).jpeg for i in range(count)]


Call = Callable[[httpx.Client, int], httpx.Response]


def timed(client: httpx.Client, call: Call, count: int) -> dict[str, Any]:
    """`WARM_UP` untimed calls, then `count` timed ones, one at a time: client wall time and the service's own
    timings (p50 of each stage), and how many hits a set had (the relevance floor may shorten it)."""
    for i in range(WARM_UP):
        call(client, i).raise_for_status()
    wall: list[float] = []
    stages: dict[str, list[float]] = {}
    hits: list[int] = []
    for i in range(count):
        started = time.perf_counter()
        response = call(client, WARM_UP + i)
        wall.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
        body = response.json()
        for stage, value in body.get("timings_ms", {}).items():
            stages.setdefault(stage, []).append(value)
        sets = body.get("recommendations", {})
        hits.append(sum(len(found) for found in sets.values()))
    return {
        "requests": count,
        "client_ms": {**percentiles(wall), "mean": round(float(np.mean(wall)), 1)},
        "service_ms_p50": {stage: percentiles(values)["p50"] for stage, values in sorted(stages.items())},
        "hits_per_answer_mean": round(float(np.mean(hits)), 1),
    }


def text_call(queries: list[str] | tuple[str, ...]) -> Call:
    return lambda client, i: client.post("/v1/search/text", json={"query": queries[i % len(queries)], "k": 5})


def colour_call(client: httpx.Client, i: int) -> httpx.Response:
    return client.post("/v1/search/color", json={"color": COLOURS[i % len(COLOURS)], "k": 5})


def look_call(photos: list[bytes]) -> Call:
    def call(client: httpx.Client, i: int) -> httpx.Response:
        upload = {"image": ("photo.jpg", photos[i % len(photos)], "image/jpeg")}
        return client.post("/v1/look", files=upload)

    return call


def over_http(gallery: Path, settings: dict[str, object], photos: list[bytes], count: int, log: Path) -> dict:
    env = {
        **{f"INFERENCE_{key.upper()}": json.dumps(v) if isinstance(v, dict) else str(v) for key, v in settings.items()},
        "INFERENCE_TOKEN": TOKEN,
    }
    service = ServiceProcess(gallery, env, log)
    started = time.perf_counter()
    service.start(timeout=600)
    start_s = time.perf_counter() - started
    results: dict[str, Any] = {"service_start_s": round(start_s, 1)}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=service.url, headers=headers, timeout=120) as client:
            for name, call in (
                ("text_russian", text_call(RUSSIAN)),
                ("text_english", text_call(ENGLISH)),
                (f"text_{LONG_QUERY_CHARS}_chars", text_call(long_queries(count + WARM_UP))),
                ("color", colour_call),
                ("look", look_call(photos)),
            ):
                load = round(os.getloadavg()[0], 2)
                results[name] = {**timed(client, call, count), "load_average_1min_before": load}
                print(f"  {name}: {json.dumps(results[name])}")  # noqa: T201
    finally:
        service.stop()
    return results


def towers_alone(settings: dict[str, object], photo: bytes, count: int) -> dict[str, Any]:
    """The text tower on one query and the image tower on one photo, in this process, no HTTP and no queue."""
    clip = ClipEmbedder(
        str(settings["clip_arch"]),
        str(settings["clip_weights"]),
        "cpu",
        tokenizer=str(settings["clip_tokenizer"]),
    )
    clip.load()
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    long_query = long_queries(1)[0]
    runs: dict[str, Callable[[int], object]] = {
        "text_tower_one_query_ms": lambda i: clip.embed_texts([RUSSIAN[i % len(RUSSIAN)]]),
        "text_tower_4000_chars_ms": lambda i: clip.embed_texts([long_query]),
        "image_tower_one_photo_ms": lambda i: clip.embed_images([image]),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(WARM_UP + count):
        for name, run in runs.items():  # interleaved, so drift of the machine hits all three alike
            started = time.perf_counter()
            run(i)
            if i >= WARM_UP:
                times[name].append((time.perf_counter() - started) * 1000)
    return {"torch_threads": torch.get_num_threads(), **{name: percentiles(t) for name, t in times.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, default=60, help="gallery works (real paintings from ../shared/gallery)")
    parser.add_argument("--queries", type=int, default=40, help="timed requests of each kind")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "artmatch-bench-search")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search.json")
    args = parser.parse_args()
    if not (SHARED_GALLERY / "metadata.csv").is_file():
        print(f"skipped: no shared gallery at {SHARED_GALLERY.resolve()} (this benchmark needs real paintings)")  # noqa: T201
        return
    load_start = os.getloadavg()[0]
    started = datetime.now(UTC)
    args.workdir.mkdir(parents=True, exist_ok=True)
    settings = multilingual_model_settings(args.workdir)
    paintings = shared_paintings(SHARED_GALLERY, args.works)
    gallery = gallery_of_paintings(args.workdir, SHARED_GALLERY / "metadata.csv", paintings, settings)
    photos = phone_photos(paintings, args.queries + WARM_UP)
    load_before = os.getloadavg()[0]
    http = over_http(gallery, settings, photos, args.queries, args.workdir / "service.log")
    alone = towers_alone(settings, photos[0], args.queries)
    result = {
        "command": f"python -m benchmarks.bench_search --works {args.works} --queries {args.queries}",
        "date_utc": started.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{os.cpu_count()} CPU cores shared with other work, "
        f"{'a GPU' if torch.cuda.is_available() else 'no GPU'}; models on the CPU",
        "load_average_1min": {
            "at_start": round(load_start, 2),
            "before_timing": round(load_before, 2),
            "at_end": round(os.getloadavg()[0], 2),
        },
        "models": "open_clip xlm-roberta-base-ViT-B-32 at its real size with random weights (ViT-B/32 image tower, "
        "12-layer XLM-RoBERTa-base text tower, mean pooled; random weights cost the compute of real ones), "
        "all-MiniLM-L6-v2, tiny LLaVA-Next",
        "tokenizer": MULTILINGUAL_TOKENIZER_NOTE,
        "gallery_works": len(paintings),
        "source": "shared/gallery (real paintings)",
        "requests": f"real service (python -m inference.serve) over loopback HTTP, one client, one request at a "
        f"time, {WARM_UP} warm-up calls per kind; client-side wall time; relevance floors on (the default)",
        "look_photos": f"{len(photos)} different simulated 1280 px phone photos (inference/identify/synthetic.py) "
        f"of {min(PHOTOGRAPHED_WORKS, len(paintings))} gallery works, identification on (the default)",
        "queries": {"russian": list(RUSSIAN), "english": list(ENGLISH), "colours": list(COLOURS)},
        "over_http": http,
        "in_process": alone,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))  # noqa: T201
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
