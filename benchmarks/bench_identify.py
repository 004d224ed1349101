"""Identification benchmark (issue 8): "which gallery work is this phone photo of, if any?".

Gallery: part of ../shared/gallery (real paintings) padded with procedurally generated paintings up to
`--works` (default 10 000). Real works are split three ways by a fixed seed: in the gallery, held out for
calibration, held out for testing, so no photo used to set the threshold is ever scored.

- queries: simulated phone photos (inference/identify/synthetic.py: perspective up to 40 degrees, rotation,
  20-100 % of the frame, up to 30 % cut off or occluded, frame and wall, glare, blur, noise, colour cast,
  JPEG 60) of the real works in the gallery;
- test negatives: photos, made the same way, of the held-out real works of the test split (not in the gallery);
- calibration negatives: photos of the other held-out real works plus of fresh procedural paintings that are
  not in the gallery; the threshold is calibrated on these only.

Latency is per photo on one thread of requests: JPEG decode + features + words + shortlist + verification.
The distractors are random procedural paintings, never derived from the queries' works.

    python -m benchmarks.bench_identify [--works 10000] [--queries 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inference.identify import Identifier, IdentifierBuilder, IdentifyConfig  # noqa: E402
from inference.identify.features import FeatureExtractor, LocalFeatures  # noqa: E402
from inference.identify.identifier import describe  # noqa: E402
from inference.identify.synthetic import painting, photograph  # noqa: E402

SHARED_GALLERY = ROOT.parent / "shared" / "gallery"
RESULTS = ROOT / "benchmarks" / "results"
# Seeds of the three kinds of procedural paintings, far apart so they never collide.
DISTRACTOR_SEED, CALIBRATION_PAINTING_SEED, PHOTO_SEED = 1_000_000, 2_000_000, 3_000_000

Source = tuple[str, int | str]  # ("real", path) or ("synthetic", seed)


def _load(source: Source) -> np.ndarray:
    kind, key = source
    if kind == "real":
        bgr = cv2.imread(str(key), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RuntimeError(f"cannot read {key}")
        return np.ascontiguousarray(bgr[..., ::-1])
    return painting(np.random.default_rng(int(key)))


_EXTRACTOR: FeatureExtractor | None = None


def _gallery_features(job: tuple[Source, int, int]) -> LocalFeatures:
    global _EXTRACTOR
    source, side, keypoints = job
    if _EXTRACTOR is None:
        cv2.setNumThreads(1)  # one process per core already
        _EXTRACTOR = FeatureExtractor(side, keypoints)
    return _EXTRACTOR(_load(source))


def _photo(job: tuple[Source, int]) -> bytes:
    cv2.setNumThreads(1)
    source, seed = job
    return photograph(np.random.default_rng(seed), _load(source)).jpeg


def _decode(jpeg: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise RuntimeError("undecodable JPEG")
    return np.ascontiguousarray(bgr[..., ::-1])


def _vocabulary_words(works: int) -> int:
    """About 1.6 words per work, as a power of two within [1024, 65536]: 16 384 at 10 k works."""
    return int(min(65536, max(1024, 2 ** math.ceil(math.log2(works * 1.6)))))


def _real_works() -> list[Path]:
    with open(SHARED_GALLERY / "metadata.csv", newline="") as f:
        return [SHARED_GALLERY / row["file"] for row in csv.DictReader(f)]


def _work_keys() -> dict[Path, str]:
    """A key per file naming the work (title + artist's last name, letters only): the shared gallery holds some
    works twice from two sources (the Mona Lisa is both mru_art_097050 and gcompris_board14), and a photo of
    the other copy is not a negative. Conservative: two different works with one title count as one."""

    def letters(text: str) -> str:
        return "".join(c for c in text.lower() if c.isalnum())

    with open(SHARED_GALLERY / "metadata.csv", newline="") as f:
        return {
            SHARED_GALLERY / row["file"]: letters(row["title"]) + "|" + letters((row["artist"].split() or [""])[-1])
            for row in csv.DictReader(f)
        }


def _cycle(items: list[Source], count: int) -> Iterator[tuple[int, Source]]:
    for i in range(count):
        yield i % len(items), items[i % len(items)]


def _reusable_build(args: argparse.Namespace, works: int) -> tuple[float, float] | None:
    """(features s, build s) of an identifier of the same gallery saved in the workdir, when `--reuse`."""
    times = args.workdir / "build_times.json"
    if not args.reuse or not times.is_file():
        return None
    saved = json.loads(times.read_text())
    return (float(saved["features_s"]), float(saved["build_s"])) if saved["works"] == works else None


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    if not (SHARED_GALLERY / "metadata.csv").is_file():
        print(f"skipped: {SHARED_GALLERY} is absent (the benchmark needs real paintings for queries)")
        return None
    rng = np.random.default_rng(args.seed)
    real = [p for p in _real_works() if p.is_file()]
    order = rng.permutation(len(real))
    n_gallery = int(round(len(real) * 0.6))
    n_cal = (len(real) - n_gallery) // 2
    in_gallery = [real[i] for i in order[:n_gallery]]
    keys = _work_keys()
    gallery_keys = {keys.get(p) for p in in_gallery}
    held_cal = [real[i] for i in order[n_gallery : n_gallery + n_cal] if keys.get(real[i]) not in gallery_keys]
    held_test = [real[i] for i in order[n_gallery + n_cal :] if keys.get(real[i]) not in gallery_keys]
    gallery: list[Source] = [("real", str(p)) for p in in_gallery]
    gallery += [("synthetic", DISTRACTOR_SEED + i) for i in range(max(0, args.works - len(gallery)))]
    config = IdentifyConfig(vocabulary_words=args.words or _vocabulary_words(len(gallery)))
    print(f"gallery {len(gallery)} works ({len(in_gallery)} real), vocabulary {config.vocabulary_words} words")

    with ProcessPoolExecutor(args.workers) as pool:
        built = _reusable_build(args, len(gallery))
        if built is not None:
            identifier = Identifier.load(args.workdir)
            t_features, t_build = built
            print(f"reusing the identifier built in {args.workdir} ({t_build:.0f} s then)")
        else:
            t0 = time.perf_counter()
            builder = IdentifierBuilder(config)
            jobs = [(s, config.gallery_side, config.gallery_keypoints) for s in gallery]
            for i, features in enumerate(pool.map(_gallery_features, jobs, chunksize=16)):
                builder.add_features(features)
                if (i + 1) % 2000 == 0:
                    print(f"  features {i + 1}/{len(gallery)} {time.perf_counter() - t0:.0f} s")
            t_features = time.perf_counter() - t0
            identifier = builder.build()
            t_build = time.perf_counter() - t0
            identifier.save(args.workdir)
            (args.workdir / "build_times.json").write_text(
                json.dumps({"works": len(gallery), "features_s": t_features, "build_s": t_build})
            )
        print(f"build {t_build:.0f} s (features {t_features:.0f} s), {identifier.bytes_per_work():.0f} B/work")

        real_sources: list[Source] = [("real", str(p)) for p in in_gallery]
        query_jobs = [(s, PHOTO_SEED + i) for i, (_, s) in enumerate(_cycle(real_sources, args.queries))]
        query_truth = [j for j, _ in _cycle(real_sources, args.queries)]  # gallery position = real order first
        test_neg = [
            (s, PHOTO_SEED + 100_000 + i)
            for i, (_, s) in enumerate(_cycle([("real", str(p)) for p in held_test], args.negatives))
        ]
        n_cal_real = args.calibration // 2
        cal_sources: list[Source] = [("real", str(p)) for p in held_cal]
        cal_jobs = [(s, PHOTO_SEED + 200_000 + i) for i, (_, s) in enumerate(_cycle(cal_sources, n_cal_real))]
        cal_jobs += [
            (("synthetic", CALIBRATION_PAINTING_SEED + i), PHOTO_SEED + 300_000 + i)
            for i in range(args.calibration - n_cal_real)
        ]
        t0 = time.perf_counter()
        cached = args.workdir / f"photos-{args.seed}-{args.calibration}-{args.queries}-{args.negatives}.npz"
        if args.reuse and cached.is_file():  # the same photos for every query config compared on this gallery
            with np.load(cached, allow_pickle=False) as saved:
                cal_photos, query_photos, neg_photos = (
                    [saved[f"{kind}_{i}"].tobytes() for i in range(int(saved[f"{kind}_count"]))]
                    for kind in ("cal", "query", "neg")
                )
        else:
            cal_photos = list(pool.map(_photo, cal_jobs, chunksize=8))
            query_photos = list(pool.map(_photo, query_jobs, chunksize=8))
            neg_photos = list(pool.map(_photo, test_neg, chunksize=8))
            arrays: dict[str, Any] = {}
            for kind, photos in (("cal", cal_photos), ("query", query_photos), ("neg", neg_photos)):
                arrays[f"{kind}_count"] = np.array(len(photos))
                arrays.update({f"{kind}_{i}": np.frombuffer(jpeg, np.uint8) for i, jpeg in enumerate(photos)})
            np.savez(cached, **arrays)
        print(f"photos {time.perf_counter() - t0:.0f} s")

    identifier = Identifier.load(args.workdir, mmap=True)  # measure what the service would run
    if args.query_side or args.query_keypoints:  # query sizes are free to change on a built identifier
        identifier.config = replace(
            identifier.config,
            query_side=args.query_side or identifier.config.query_side,
            query_keypoints=args.query_keypoints or identifier.config.query_keypoints,
        )
    t0 = time.perf_counter()
    cal_scores = identifier.calibrate(_decode(j) for j in cal_photos)
    print(f"calibration {time.perf_counter() - t0:.0f} s: threshold {identifier.threshold}")

    def score(photos: list[bytes]) -> tuple[list[int | None], list[int], list[float]]:
        claims: list[int | None] = []
        best: list[int] = []
        latency: list[float] = []
        for jpeg in photos:
            t = time.perf_counter()
            image = _decode(jpeg)
            candidate = identifier.best_candidate(image)
            latency.append(time.perf_counter() - t)
            inliers = 0 if candidate is None else candidate.verification.inliers
            best.append(inliers)
            ok = candidate is not None and identifier.threshold.accepts(inliers)
            claims.append(candidate.index if ok and candidate is not None else None)
        return claims, best, latency

    load_before = os.getloadavg()[0]  # other work on the machine inflates the latencies: say how much there was
    q_claims, q_best, q_latency = score(query_photos)
    n_claims, n_best, n_latency = score(neg_photos)
    load_after = os.getloadavg()[0]
    correct = sum(c == t for c, t in zip(q_claims, query_truth, strict=True))
    wrong_on_queries = sum(c is not None and c != t for c, t in zip(q_claims, query_truth, strict=True))
    false_ids = sum(c is not None for c in n_claims)
    latency = np.array(q_latency + n_latency) * 1000
    result: dict[str, Any] = {
        "command": "python -m benchmarks.bench_identify " + " ".join(sys.argv[1:]),
        "gallery_works": len(gallery),
        "real_works_in_gallery": len(in_gallery),
        "procedural_distractors": len(gallery) - len(in_gallery),
        "queries": len(query_photos),
        "test_negatives": len(neg_photos),
        "test_negative_works": len(held_test),
        "calibration_negatives": len(cal_photos),
        "calibration_negative_real_works": len(held_cal),
        "top1_accuracy": round(correct / len(query_photos), 4),
        "wrong_claims_on_queries": round(wrong_on_queries / len(query_photos), 4),
        "false_identification_rate": round(false_ids / max(len(neg_photos), 1), 4),
        "latency_ms": {
            "p50": round(float(np.percentile(latency, 50)), 1),
            "p95": round(float(np.percentile(latency, 95)), 1),
            "max": round(float(latency.max()), 1),
        },
        "build_s": round(t_build, 1),
        "build_features_s": round(t_features, 1),
        "identifier": describe(identifier),
        "config": {k: getattr(identifier.config, k) for k in identifier.config.__dataclass_fields__},
        "inliers": {
            "queries_median": float(np.median(q_best)),
            "negatives_max": int(max(n_best, default=0)),
            "calibration_max": int(max(cal_scores, default=0)),
        },
        "cpu": f"{os.cpu_count()} cores",
        "load_average_1m": {"before_queries": round(load_before, 2), "after_queries": round(load_after, 2)},
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    if args.plot:
        _plot(q_best, n_best, cal_scores, identifier.threshold.min_inliers, args.out.with_suffix(".png"), result)
    return result


def _plot(
    queries: list[int], negatives: list[int], calibration: list[int], threshold: int, path: Path, result: dict[str, Any]
) -> None:
    """Inlier counts of the best candidate: gallery photos vs photos of works outside it, and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    top = max(queries + negatives + calibration + [threshold]) + 2
    bins = [float(b) for b in np.unique(np.geomspace(1, top, 40).astype(int))]
    shift = [max(v, 1) for v in queries], [max(v, 1) for v in negatives], [max(v, 1) for v in calibration]
    ax.hist(shift[0], bins=bins, alpha=0.6, label=f"photos of gallery works ({len(queries)})")
    ax.hist(shift[1], bins=bins, alpha=0.6, label=f"test negatives ({len(negatives)})")
    ax.hist(shift[2], bins=bins, alpha=0.4, histtype="step", label=f"calibration negatives ({len(calibration)})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold}")
    ax.set_xscale("log")
    ax.set_xlabel("inliers of the best verified candidate (0 shown as 1)")
    ax.set_ylabel("photos")
    ax.set_title(
        f"{result['gallery_works']} works: top-1 {result['top1_accuracy']:.1%}, "
        f"false ids {result['false_identification_rate']:.1%}, p95 {result['latency_ms']['p95']:.0f} ms"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--works", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--negatives", type=int, default=400)
    parser.add_argument("--calibration", type=int, default=400)
    parser.add_argument("--words", type=int, default=0, help="vocabulary size (default: by gallery size)")
    parser.add_argument("--query-side", type=int, default=0, help="photo working size (default: the config's)")
    parser.add_argument("--query-keypoints", type=int, default=0, help="photo keypoints (default: the config's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/artmatch-bench-identify"))
    parser.add_argument("--out", type=Path, default=RESULTS / "identify.json")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the identifier of a previous run of the same size in --workdir"
    )
    parser.add_argument("--no-plot", dest="plot", action="store_false")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
