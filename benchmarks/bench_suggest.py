"""/foryou at gallery scale: time of `suggest_for` (profile + candidates + ranking) as the gallery grows.

Galleries of synthetic CLIP-sized vectors (512 dims, clustered like kinds of art) in the real `Gallery` with its
FAISS index; a user with 30 likes over three kinds, a few dislikes and 200 works already seen. Up to 5 000 works
every unseen one is scored; above that the candidates are the FAISS neighbours of each interest plus a random
sample, so the time should stop growing with the gallery.

    python benchmarks/bench_suggest.py --sizes 1000 5000 20000 100000 --repeats 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback.taste import FeedbackEvent  # noqa: E402
from inference.gallery_store import Artwork, Gallery, Manifest, ModelIdentity, build_index  # noqa: E402
from inference.suggestions import suggest_for  # noqa: E402

DIM = 512
KINDS = 60


def synthetic_gallery(size: int, rng: np.random.Generator) -> tuple[Gallery, np.ndarray]:
    centres = rng.standard_normal((KINDS, DIM)).astype(np.float32)
    kind = rng.integers(0, KINDS, size)
    vectors = centres[kind] + 1.2 * rng.standard_normal((size, DIM)).astype(np.float32)
    index = build_index(vectors)
    identity = ModelIdentity("ViT-B-32", None, DIM, "minilm", 384)
    artworks = [Artwork(id=i, file=f"{i}.jpg", sha256="", title=f"Work {i}") for i in range(size)]
    gallery = Gallery(Path("/nonexistent"), Manifest(identity, "none", size), artworks, index, index)
    return gallery, kind


def user_feedback(kind: np.ndarray, rng: np.random.Generator) -> tuple[list[FeedbackEvent], list[int]]:
    liked_kinds = rng.choice(KINDS, 3, replace=False)
    likes = [int(i) for k in liked_kinds for i in rng.choice(np.flatnonzero(kind == k), 10, replace=False)]
    dislikes = [int(i) for i in rng.choice(np.flatnonzero(~np.isin(kind, liked_kinds)), 5, replace=False)]
    events = [FeedbackEvent(i, 1.0, float(rng.uniform(0, 60))) for i in likes]
    events += [FeedbackEvent(i, -1.0, float(rng.uniform(0, 60))) for i in dislikes]
    seen = [int(i) for i in rng.choice(len(kind), 200, replace=False)]
    return events, seen


def main(args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    rows = []
    for size in args.sizes:
        gallery, kind = synthetic_gallery(size, rng)
        events, seen = user_feedback(kind, rng)
        liked_kinds = {int(kind[e.artwork_id]) for e in events if e.value > 0}
        times: list[float] = []
        on_taste: list[float] = []
        for repeat in range(args.repeats):
            start = time.perf_counter()
            result = suggest_for(gallery, events, seen, 5, exploration=0.1, seed=repeat)
            times.append((time.perf_counter() - start) * 1000)
            picks = [s.artwork_id for s in result.suggestions if not s.explored]
            on_taste.append(float(np.mean([int(kind[i]) in liked_kinds for i in picks])) if picks else 0.0)
        row = {
            "gallery": size,
            "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(float(np.percentile(times, 95)), 1),
            "share_of_taste_picks_in_liked_kinds": round(float(np.mean(on_taste)), 3),
        }
        rows.append(row)
        print(
            f"{size:>8,} works: p50 {row['p50_ms']:>7.1f} ms, p95 {row['p95_ms']:>7.1f} ms; "
            f"taste picks in a liked kind: {row['share_of_taste_picks_in_liked_kinds']:.0%}"
        )
    return {"machine": f"{os.cpu_count()} CPU cores", "dim": DIM, "kinds": KINDS, "rows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000, 100000])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "suggest.json")
    arguments = parser.parse_args()
    arguments.out.write_text(json.dumps(main(arguments), indent=2) + "\n")
