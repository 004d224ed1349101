"""Index types against gallery size: build time, memory, single-query latency, recall@10, and /foryou on top.

Vectors with the structure of real CLIP embeddings, not i.i.d. noise (which makes every neighbour equidistant and
proves nothing): 512-d, 2 000 clusters ("kinds of art") of skewed sizes and varied spreads around a shared mean
direction, L2-normalised. Queries are gallery works moved a little off themselves (a photo of a work) and new
members of the clusters that the gallery does not hold (a work it lacks). Recall@10 is against exact search over
the same rows; latency is one query at a time, as the service asks. `/foryou` is the real `suggest_for` on a
`Gallery` built with each index (users with 30 likes over three kinds, a few dislikes, 200 works seen).

    python -m benchmarks.bench_index --sizes 100000 1000000
    python -m benchmarks.bench_index --quick          # 20 000 and 100 000 rows, fewer queries: a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback.taste import FeedbackEvent  # noqa: E402
from inference.gallery_store import Artwork, Gallery, Manifest, ModelIdentity  # noqa: E402
from inference.suggestions import suggest_for  # noqa: E402
from inference.vector_index import (  # noqa: E402
    IndexSettings,
    IndexSpec,
    VectorIndex,
    build_vector_index,
    choose_spec,
    ivf_lists,
    recall_at,
)

DIM = 512
CLUSTERS = 2000
K = 10
RESULTS = ROOT / "benchmarks" / "results" / "index.json"


class Embeddings:
    """Clustered unit vectors: cluster centres around a common direction, members at a per-cluster spread."""

    def __init__(self, rng: np.random.Generator, dim: int = DIM, clusters: int = CLUSTERS) -> None:
        self.rng, self.dim = rng, dim
        common = rng.standard_normal(dim).astype(np.float32)
        common /= np.linalg.norm(common)
        centres = rng.standard_normal((clusters, dim)).astype(np.float32) / np.sqrt(dim)
        self.centres = _unit(centres + 0.8 * common)  # mean pairwise cosine ~0.4, as CLIP image embeddings
        self.spread = rng.uniform(0.35, 1.1, clusters).astype(np.float32)  # tight styles and loose ones
        sizes = rng.lognormal(0.0, 1.0, clusters)
        self.weights = sizes / sizes.sum()

    def members(self, labels: np.ndarray) -> np.ndarray:
        noise = self.rng.standard_normal((len(labels), self.dim)).astype(np.float32) / np.sqrt(self.dim)
        return _unit(self.centres[labels] + self.spread[labels, None] * noise)

    def gallery(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = self.rng.choice(len(self.centres), size=n, p=self.weights).astype(np.int32)
        rows = np.empty((n, self.dim), dtype=np.float32)
        for start in range(0, n, 100_000):
            rows[start : start + 100_000] = self.members(labels[start : start + 100_000])
        return rows, labels

    def queries(self, rows: np.ndarray, count: int) -> dict[str, np.ndarray]:
        """Half perturbed gallery works, half new members of the gallery's clusters."""
        picked = rows[self.rng.choice(len(rows), size=count // 2, replace=False)]
        noise = self.rng.standard_normal(picked.shape).astype(np.float32) / np.sqrt(self.dim)
        new_labels = self.rng.choice(len(self.centres), size=count - count // 2, p=self.weights)
        return {"perturbed": _unit(picked + 0.3 * noise), "held_out": self.members(new_labels)}


def _unit(rows: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12))


def index_bytes(index: VectorIndex) -> int:
    """Size of the index as FAISS writes it: its memory footprint up to small headers."""
    with tempfile.NamedTemporaryFile(suffix=".faiss", dir="/tmp") as file:
        index.save(Path(file.name))
        return os.path.getsize(file.name)


def latency_ms(index: VectorIndex, queries: np.ndarray) -> tuple[list[float], list[float]]:
    """Wall and CPU time (this thread) per single query; with one thread the CPU time is what the query costs
    on an idle machine, the wall time what it cost among the other jobs."""
    wall, cpu = [], []
    for row in queries:
        start, start_cpu = time.perf_counter(), time.thread_time()
        index.search(row[None], K)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return wall, cpu


def timing_stats(wall: list[float], cpu: list[float], tail: int) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(wall), 3),
        f"p{tail}_ms": round(float(np.percentile(wall, tail)), 3),
        "cpu_p50_ms": round(statistics.median(cpu), 3),
        f"cpu_p{tail}_ms": round(float(np.percentile(cpu, tail)), 3),
    }


def measure(
    kind: str, rows: np.ndarray, queries: dict[str, np.ndarray], truth: dict[str, np.ndarray], timed: int
) -> tuple[dict[str, object], VectorIndex]:
    settings = IndexSettings(index_kind=kind)
    spec = choose_spec(len(rows), rows.shape[1], settings)
    if kind == "hnsw":
        spec = IndexSpec("hnsw", m=32, ef_construction=80, ef_search=64)
    started = time.perf_counter()
    index = build_vector_index(rows, spec, settings=settings)
    build_s = time.perf_counter() - started
    every = np.concatenate(list(queries.values()))
    with threadpool_limits(THREADS), _faiss_threads(THREADS):
        wall, cpu = latency_ms(index, every[np.linspace(0, len(every) - 1, min(timed, len(every))).astype(int)])
    recalls = {name: recall_at(index.search(q, K)[1], truth[name]) for name, q in queries.items()}
    row: dict[str, object] = {
        "gallery": len(rows),
        "index": index.spec.describe(),
        "kind": kind,
        "spec": index.spec.to_dict(),
        "build_s": round(build_s, 1),
        "memory_mb": round(index_bytes(index) / 2**20, 1),
        **timing_stats(wall, cpu, 99),
        "recall_at_10": round(float(np.mean(list(recalls.values()))), 4),
        "recall_at_10_perturbed": round(recalls["perturbed"], 4),
        "recall_at_10_held_out": round(recalls["held_out"], 4),
        "timed_queries": len(wall),
    }
    print(
        f"{len(rows):>9,} {row['index']:<34} build {row['build_s']:>6} s  {row['memory_mb']:>7} MB  "
        f"p50 {row['p50_ms']:>8} ms  p99 {row['p99_ms']:>8} ms (CPU {row['cpu_p50_ms']} / {row['cpu_p99_ms']})  "
        f"recall@10 {row['recall_at_10']:.4f}",
        flush=True,
    )
    return row, index


def qdrant_row(
    rows: np.ndarray, queries: dict[str, np.ndarray], truth: dict[str, np.ndarray], timed: int
) -> dict[str, object]:
    """The same queries through Qdrant's local mode (a numpy scan in this process: a correctness check of the
    backend, not the server's performance)."""
    from inference.qdrant_index import QdrantIndex, connect

    settings = IndexSettings(vector_backend="qdrant")  # in memory: local mode on disk adds SQLite writes
    client = connect(settings)
    started = time.perf_counter()
    index = QdrantIndex.create(client, "bench", rows.shape[1], settings=settings)
    for start in range(0, len(rows), 20_000):
        index.add(rows[start : start + 20_000])
    build_s = time.perf_counter() - started
    every = np.concatenate(list(queries.values()))
    with threadpool_limits(THREADS):
        wall, cpu = latency_ms(index, every[: min(timed, len(every))])
    recalls = {name: recall_at(index.search(q, K)[1], truth[name]) for name, q in queries.items()}
    client.close()
    row: dict[str, object] = {
        "gallery": len(rows),
        "index": "Qdrant local mode (brute-force scan)",
        "kind": "qdrant_local",
        "build_s": round(build_s, 1),
        "memory_mb": None,
        **timing_stats(wall, cpu, 99),
        "recall_at_10": round(float(np.mean(list(recalls.values()))), 4),
        "timed_queries": len(wall),
    }
    print(
        f"{len(rows):>9,} {row['index']:<34} load {row['build_s']} s  p50 {row['p50_ms']} ms  "
        f"p99 {row['p99_ms']} ms  recall@10 {row['recall_at_10']:.4f}",
        flush=True,
    )
    return row


def users(labels: np.ndarray, rng: np.random.Generator, count: int) -> list[tuple[list[FeedbackEvent], list[int]]]:
    """Users who liked 10 works in each of three kinds, disliked 5 others and have seen 200."""
    sizes = np.bincount(labels, minlength=CLUSTERS)
    big = np.flatnonzero(sizes >= 20)
    out = []
    for _ in range(count):
        liked = rng.choice(big, 3, replace=False)
        likes = [int(i) for kind in liked for i in rng.choice(np.flatnonzero(labels == kind), 10, replace=False)]
        dislikes = [int(i) for i in rng.choice(len(labels), 5, replace=False) if labels[i] not in liked]
        events = [FeedbackEvent(i, 1.0, float(rng.uniform(0, 60))) for i in likes]
        events += [FeedbackEvent(i, -1.0, float(rng.uniform(0, 60))) for i in dislikes]
        out.append((events, [int(i) for i in rng.choice(len(labels), 200, replace=False)]))
    return out


def foryou_row(index: VectorIndex, labels: np.ndarray, rng: np.random.Generator, calls: int) -> dict[str, object]:
    n = len(labels)
    identity = ModelIdentity("ViT-B-32", None, DIM, "minilm", 384)
    artworks = [Artwork(id=i, file=f"{i}.jpg", sha256="") for i in range(n)]
    gallery = Gallery(Path("/nonexistent"), Manifest(identity, "none", n), artworks, index, index)
    people = users(labels, rng, max(1, calls // 5))
    suggest_for(gallery, *people[0], 5, exploration=0.1, seed=0)  # warm-up
    wall, cpu, on_taste = [], [], []
    for call in range(calls):
        events, seen = people[call % len(people)]
        liked = {int(labels[e.artwork_id]) for e in events if e.value > 0}
        start, start_cpu = time.perf_counter(), time.thread_time()
        with threadpool_limits(THREADS), _faiss_threads(THREADS):
            result = suggest_for(gallery, events, seen, 5, exploration=0.1, seed=call)
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        picks = [s.artwork_id for s in result.suggestions if not s.explored]
        on_taste.append(float(np.mean([int(labels[i]) in liked for i in picks])) if picks else 0.0)
    row: dict[str, object] = {
        "gallery": n,
        "index": index.spec.describe(),
        **timing_stats(wall, cpu, 95),
        "share_of_taste_picks_in_liked_kinds": round(float(np.mean(on_taste)), 3),
        "calls": calls,
    }
    print(
        f"{n:>9,} /foryou on {row['index']:<28} p50 {row['p50_ms']} ms  p95 {row['p95_ms']} ms "
        f"(CPU {row['cpu_p50_ms']} / {row['cpu_p95_ms']})  "
        f"taste picks in a liked kind {row['share_of_taste_picks_in_liked_kinds']:.0%}",
        flush=True,
    )
    del gallery, artworks
    return row


THREADS = 1
"""Threads for timed searches and /foryou: one, as each of the service's concurrent requests gets."""


@contextlib.contextmanager
def _faiss_threads(count: int) -> Iterator[None]:
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def run(args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    space = Embeddings(rng)
    load_start = [round(x, 2) for x in os.getloadavg()]
    rows_out: list[dict[str, object]] = []
    foryou: list[dict[str, object]] = []
    for n in args.sizes:
        started = time.perf_counter()
        rows, labels = space.gallery(n)
        queries = space.queries(rows, args.queries)
        truth = {name: faiss.knn(q, rows, K, metric=faiss.METRIC_INNER_PRODUCT)[1] for name, q in queries.items()}
        print(
            f"{n:,} rows, {args.queries} queries and exact top-{K} in {time.perf_counter() - started:.1f} s", flush=True
        )
        kinds = [kind for kind in args.kinds if kind != "hnsw" or n <= args.hnsw_max]
        for kind in kinds:
            timed = args.flat_timed if kind == "flat" else args.timed
            row, index = measure(kind, rows, queries, truth, timed)
            rows_out.append(row)
            if kind == "flat" or kind == "ivf":
                foryou.append(
                    {
                        **foryou_row(index, labels, rng, args.foryou_calls if kind == "ivf" else args.flat_timed // 10),
                        "kind": kind,
                    }
                )
            del index
            gc.collect()
            write(args.out, report(args, load_start, rows_out, foryou))  # a long run keeps what it measured
        if n <= args.qdrant_max:
            rows_out.append(qdrant_row(rows, queries, truth, min(args.timed, 200)))
        del rows, labels, queries, truth
        gc.collect()
    return report(args, load_start, rows_out, foryou)


def write(path: Path, result: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def report(
    args: argparse.Namespace,
    load_start: list[float],
    rows_out: list[dict[str, object]],
    foryou: list[dict[str, object]],
) -> dict[str, object]:
    return {
        "command": "python -m benchmarks.bench_index " + " ".join(sys.argv[1:]),
        "machine": f"{os.cpu_count()} shared CPU cores ({platform.processor() or platform.machine()}), "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM shared with other jobs, no GPU"
        f"; faiss {faiss.__version__}; builds on {faiss.omp_get_max_threads()} threads, queries and /foryou on "
        f"{THREADS} (wall and this thread's CPU time both reported)",
        "data": f"{DIM}-d unit vectors in {CLUSTERS} clusters of skewed sizes and spreads 0.35-1.1 around a common "
        f"direction; {args.queries} queries per size: half perturbed gallery works, half held-out cluster members",
        "target_recall_for_tuning": IndexSettings().index_target_recall,
        "ivf_lists_rule": {str(n): ivf_lists(n) for n in args.sizes},
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0),
        "indexes": rows_out,
        "foryou": foryou,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--quick", action="store_true", help="20 000 and 100 000 rows, fewer queries")
    parser.add_argument("--queries", type=int, default=1000, help="recall queries per size (half of each kind)")
    parser.add_argument("--timed", type=int, default=1000, help="single queries timed per approximate index")
    parser.add_argument("--flat-timed", type=int, default=200, help="single queries timed on the exact index")
    parser.add_argument("--foryou-calls", type=int, default=100)
    parser.add_argument("--hnsw-max", type=int, default=200_000, help="largest size HNSW is built at")
    parser.add_argument("--qdrant-max", type=int, default=100_000, help="largest size run through Qdrant local mode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "ivf_sq8", "hnsw"], help="index types to run")
    parser.add_argument("--out", type=Path, default=None, help=f"default {RESULTS} (quick runs: /tmp)")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.queries, args.timed, args.flat_timed, args.foryou_calls = [20_000, 100_000], 400, 300, 100, 40
        args.qdrant_max = 20_000
    args.out = args.out or (Path(tempfile.gettempdir()) / "index_quick.json" if args.quick else RESULTS)
    write(args.out, run(args))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
