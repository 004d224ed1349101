"""Personal suggestions with simulated users: ArtMatch's taste profiles against popularity and random.

Each simulated user has a hidden taste (2-3 kinds of art, i.e. clusters of the gallery): they like a work of their
kinds with probability 0.85, any other with 0.03, and dislike a work they do not like with probability 0.3. Round 0
is onboarding (8 works; ArtMatch shows `diverse_sample`); then every round ("day") each method shows 5 works the user
has not seen and the user reacts. ArtMatch runs the real code: `TasteProfile.build` over all feedback so far (ages
in days) and `suggest` over every unseen work. Popularity shows the most-liked unseen works, counted over a separate
population of simulated users; random shows random unseen works. Same users, same hidden reactions for all three.

    python -m benchmarks.bench_personalization --users 200 --rounds 20
    python -m benchmarks.bench_personalization --gallery-vectors image_vectors.npy   # real CLIP vectors
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.common is not imported: it loads torch, which this one never needs

from feedback.suggest import diverse_sample, suggest  # noqa: E402
from feedback.taste import FeedbackEvent, TasteProfile  # noqa: E402

LIKE_IN_TASTE = 0.85
LIKE_OUTSIDE = 0.03
DISLIKE_IF_NOT_LIKED = 0.3
ONBOARDING = 8
PER_ROUND = 5
METHODS = ("artmatch", "popularity", "random")


@dataclass
class Gallery:
    vectors: np.ndarray  # (n, D) unit rows
    labels: np.ndarray  # (n,) kind of art (cluster) per work
    popularity: np.ndarray  # (clusters,) how likely a user is to like that kind; sums to 1
    source: str


@dataclass
class User:
    likes: np.ndarray  # (n,) bool: hidden reaction to every work, drawn once so all methods face the same user
    dislikes: np.ndarray
    kinds: list[int]


@dataclass
class Run:
    """One method's pass over all users: hits per user per round (round 0 is onboarding)."""

    hits: np.ndarray  # (users, rounds + 1)
    shown: np.ndarray  # (rounds + 1,) works shown per round


def synthetic_gallery(works: int, kinds: int, dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Clusters on the unit sphere shaped like CLIP space: a shared direction (unrelated works still have cosine
    ~0.3), kinds grouped into broader movements (sibling kinds overlap), per-work spread, and some works mixing two
    sibling kinds."""

    def unit(rows: int) -> np.ndarray:
        matrix = rng.standard_normal((rows, dim))
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    shared, movements, kind_dirs = unit(1)[0], unit(max(2, kinds // 5)), unit(kinds)
    movement_of = rng.integers(len(movements), size=kinds)
    sizes = np.maximum(rng.dirichlet(np.full(kinds, 3.0)) * works, 20).astype(int)
    sizes[-1] = max(1, works - sizes[:-1].sum())
    labels = rng.permutation(np.repeat(np.arange(kinds), sizes)[:works])
    own = np.sqrt(rng.uniform(0.08, 0.28, size=works))[:, None]
    siblings = np.array([rng.choice(np.flatnonzero(movement_of == movement_of[k])) for k in labels])
    mix = (rng.random(works) < 0.35)[:, None] * own * rng.uniform(0.4, 1.0, size=(works, 1))
    vectors = (
        np.sqrt(0.30) * shared
        + np.sqrt(0.12) * movements[movement_of[labels]]
        + own * kind_dirs[labels]
        + mix * kind_dirs[siblings]
        + np.sqrt(0.45) * unit(works)
    )
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32), labels


def clustered_vectors(path: Path, kinds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Real vectors: the hidden kinds of art are their spherical k-means clusters."""
    import faiss

    vectors = np.load(path).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kmeans = faiss.Kmeans(vectors.shape[1], kinds, niter=25, spherical=True, seed=seed, verbose=False)
    kmeans.train(vectors)
    _, labels = kmeans.index.search(vectors, 1)
    return vectors, labels[:, 0]


def make_gallery(args: argparse.Namespace, rng: np.random.Generator) -> Gallery:
    if args.gallery_vectors:
        vectors, labels = clustered_vectors(args.gallery_vectors, args.kinds, args.seed)
        source = f"{args.gallery_vectors} ({len(vectors)} works, {vectors.shape[1]} dims, {args.kinds} k-means kinds)"
    else:
        vectors, labels = synthetic_gallery(args.works, args.kinds, args.dim, rng)
        source = f"synthetic ({len(vectors)} works, {vectors.shape[1]} dims, {args.kinds} kinds)"
    kinds = int(labels.max()) + 1
    popularity = 1.0 / np.arange(1, kinds + 1) ** args.popularity_skew  # Zipf: some kinds please more people
    return Gallery(vectors, labels, rng.permutation(popularity / popularity.sum()), source)


def gallery_stats(gallery: Gallery, rng: np.random.Generator) -> dict[str, float]:
    """How separable the kinds are, so results on different galleries can be compared."""
    sample = rng.choice(len(gallery.vectors), size=min(2000, len(gallery.vectors)), replace=False)
    vectors, labels = gallery.vectors[sample], gallery.labels[sample]
    cosine = vectors @ vectors.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    other = labels[:, None] != labels[None, :]
    centroids = np.stack([gallery.vectors[gallery.labels == k].mean(axis=0) for k in range(gallery.labels.max() + 1)])
    nearest = (vectors @ centroids.T).argmax(axis=1)
    np.fill_diagonal(cosine, -np.inf)
    neighbours = np.argsort(-cosine, axis=1)[:, :10]
    return {
        "mean_cosine_same_kind": round(float(cosine[same].mean()), 3),
        "mean_cosine_other_kinds": round(float(cosine[other].mean()), 3),
        "share_nearer_to_another_kind_centroid": round(float((nearest != labels).mean()), 3),
        "share_of_10_nearest_neighbours_same_kind": round(float((labels[neighbours] == labels[:, None]).mean()), 3),
    }


def make_user(gallery: Gallery, rng: np.random.Generator) -> User:
    kinds = rng.choice(len(gallery.popularity), size=int(rng.integers(2, 4)), replace=False, p=gallery.popularity)
    in_taste = np.isin(gallery.labels, kinds)
    likes = rng.random(len(gallery.labels)) < np.where(in_taste, LIKE_IN_TASTE, LIKE_OUTSIDE)
    dislikes = ~likes & (rng.random(len(gallery.labels)) < DISLIKE_IF_NOT_LIKED)
    return User(likes, dislikes, [int(k) for k in kinds])


def popularity_order(gallery: Gallery, population: int, views: int, rng: np.random.Generator) -> np.ndarray:
    """Works by like count over a separate population, each person shown `views` random works."""
    counts = np.zeros(len(gallery.labels))
    for _ in range(population):
        user = make_user(gallery, rng)
        shown = rng.choice(len(gallery.labels), size=views, replace=False)
        counts[shown] += user.likes[shown]
    return np.lexsort((rng.random(len(counts)), -counts))  # ties broken at random


Recommender = Callable[[User, np.ndarray, list[tuple[int, float, int]], int, int, np.random.Generator], list[int]]


def artmatch(gallery: Gallery, half_life: float, extra: dict[str, list[float]]) -> Recommender:
    def vectors(ids: object) -> np.ndarray:
        return gallery.vectors[np.asarray(ids, dtype=int)]

    def recommend(
        user: User, seen: np.ndarray, log: list[tuple[int, float, int]], day: int, k: int, rng: np.random.Generator
    ) -> list[int]:
        unseen = np.flatnonzero(~seen)
        if day == 0:
            return diverse_sample(unseen, gallery.vectors[unseen], k, rng)
        events = [FeedbackEvent(work, value, float(day - when)) for work, value, when in log]
        profile = TasteProfile.build(events, vectors, half_life_days=half_life, seed=day)
        picks = suggest(profile, unseen, gallery.vectors[unseen], k, rng=rng)
        extra.setdefault(f"interests_day_{day}", []).append(len(profile.interests))
        extra.setdefault(f"explored_day_{day}", []).append(sum(p.explored for p in picks) / max(1, len(picks)))
        return [p.artwork_id for p in picks]

    return recommend


Log = list[tuple[int, float, int]]  # (artwork id, feedback value, day)


def popular(order: np.ndarray) -> Recommender:
    def recommend(user: User, seen: np.ndarray, log: Log, day: int, k: int, rng: np.random.Generator) -> list[int]:
        return [int(i) for i in order[~seen[order]][:k]]

    return recommend


def random_unseen(user: User, seen: np.ndarray, log: Log, day: int, k: int, rng: np.random.Generator) -> list[int]:
    unseen = np.flatnonzero(~seen)
    return [int(i) for i in rng.choice(unseen, size=min(k, len(unseen)), replace=False)]


def simulate(users: list[User], recommend: Recommender, rounds: int, seed: int, ignored_value: float = 0.0) -> Run:
    hits = np.zeros((len(users), rounds + 1))
    shown_counts = np.zeros(rounds + 1)
    for index, user in enumerate(users):
        rng = np.random.default_rng([seed, index])
        seen = np.zeros(len(user.likes), dtype=bool)
        log: list[tuple[int, float, int]] = []
        for day in range(rounds + 1):
            k = ONBOARDING if day == 0 else PER_ROUND
            shown = recommend(user, seen, log, day, k, rng)
            assert len(shown) == len(set(shown)) <= k and not seen[shown].any(), "shown a work twice"
            seen[shown] = True
            hits[index, day] = user.likes[shown].sum()
            shown_counts[day] = k
            log += [(work, 1.0, day) for work in shown if user.likes[work]]
            log += [(work, -1.0, day) for work in shown if user.dislikes[work]]
            if ignored_value:  # shown, neither liked nor disliked: only if the bot records that
                log += [(work, ignored_value, day) for work in shown if not user.likes[work] | user.dislikes[work]]
    return Run(hits, shown_counts)


def plot(result: dict, path: Path) -> None:
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2)
    rounds = np.arange(1, len(result["methods"]["artmatch"]["hit_rate_at_5"]))
    colours = {"artmatch": "tab:red", "popularity": "tab:blue", "random": "tab:gray"}
    for name, run in result["methods"].items():
        left.plot(rounds, run["hit_rate_at_5"][1:], marker="o", markersize=3, label=name, color=colours[name])
        right.plot(rounds, run["share_with_a_hit"][1:], marker="o", markersize=3, label=name, color=colours[name])
    target = [2 * v for v in result["methods"]["popularity"]["hit_rate_at_5"][1:]]
    left.plot(rounds, target, linestyle="--", color="tab:blue", alpha=0.5, label="2x popularity (target)")
    left.set(xlabel="round (day)", ylabel="hit-rate@5", title="Liked share of the 5 shown works", ylim=(0, 1))
    right.set(xlabel="round (day)", ylabel="share of users", title="Users with at least 1 liked work", ylim=(0, 1))
    for axis in (left, right):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(f"{result['users']} simulated users, {result['gallery']['source']}", fontsize=9)
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gallery-vectors", type=Path, help=".npy of (n, D) image embeddings instead of synthetic")
    parser.add_argument("--works", type=int, default=5000, help="synthetic gallery size")
    parser.add_argument("--kinds", type=int, default=40, help="clusters (kinds of art) in the gallery")
    parser.add_argument("--dim", type=int, default=128, help="synthetic embedding dimension")
    parser.add_argument("--popularity-skew", type=float, default=0.6, help="Zipf exponent of how popular kinds are")
    parser.add_argument("--population", type=int, default=2000, help="simulated users behind the popularity counts")
    parser.add_argument("--half-life", type=float, default=30.0, help="days; TasteProfile.build(half_life_days=)")
    parser.add_argument(
        "--ignored-value",
        type=float,
        default=0.0,
        help="feedback value for a shown work the user neither liked nor disliked (0: not recorded, the bot today)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "personalization.json")
    args = parser.parse_args()

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    gallery = make_gallery(args, rng)
    stats = gallery_stats(gallery, rng)
    users = [make_user(gallery, np.random.default_rng([args.seed, 1, i])) for i in range(args.users)]
    order = popularity_order(gallery, args.population, 100, np.random.default_rng([args.seed, 2]))
    extra: dict[str, list[float]] = {}
    recommenders: dict[str, Recommender] = {
        "artmatch": artmatch(gallery, args.half_life, extra),
        "popularity": popular(order),
        "random": random_unseen,
    }
    runs = {}
    timings = {}
    for name in METHODS:
        began = time.perf_counter()
        runs[name] = simulate(users, recommenders[name], args.rounds, args.seed, args.ignored_value)
        timings[name] = round(time.perf_counter() - began, 1)

    hit_rate = {name: [round(float(v), 4) for v in (run.hits / run.shown).mean(axis=0)] for name, run in runs.items()}
    share = {name: [round(float(v), 4) for v in (run.hits > 0).mean(axis=0)] for name, run in runs.items()}
    methods = {
        name: {"hit_rate_at_5": hit_rate[name], "share_with_a_hit": share[name], "seconds": timings[name]}
        for name in runs
    }
    check = min(10, args.rounds)
    ratio = hit_rate["artmatch"][check] / max(hit_rate["popularity"][check], 1e-9)
    artmatch_curve = hit_rate["artmatch"]
    rounds_range = range(args.rounds + 1)
    result = {
        "users": args.users,
        "rounds": args.rounds,
        "seed": args.seed,
        "protocol": {
            "onboarding_works": ONBOARDING,
            "works_per_round": PER_ROUND,
            "like_probability_in_taste": LIKE_IN_TASTE,
            "like_probability_outside": LIKE_OUTSIDE,
            "dislike_probability_if_not_liked": DISLIKE_IF_NOT_LIKED,
            "kinds_per_user": f"2-3, drawn by kind popularity (Zipf exponent {args.popularity_skew:.2f})",
            "popularity_population": f"{args.population} users x 100 random views",
            "half_life_days": args.half_life,
            "ignored_value": args.ignored_value,
            "note": "round 0 is onboarding (hit-rate over 8 works); rounds 1.. are /foryou (5 unseen works)",
        },
        "gallery": {"source": gallery.source, **stats},
        "methods": methods,
        "artmatch_diagnostics": {
            "mean_interests": [round(float(np.mean(extra.get(f"interests_day_{d}", [0]))), 2) for d in rounds_range],
            "explored_share": [round(float(np.mean(extra.get(f"explored_day_{d}", [0]))), 3) for d in rounds_range],
        },
        f"ratio_artmatch_to_popularity_round_{check}": round(ratio, 2),
        "target_met": bool(ratio >= 2.0 and artmatch_curve[check] > artmatch_curve[1]),
        "machine": f"{os.cpu_count()} CPU cores",
        "seconds": round(time.perf_counter() - started, 1),
    }

    print(f"gallery: {gallery.source}; {stats}")
    print(f"{args.users} users; hit-rate@5 (share of users with >=1 hit)")
    print(f"{'round':>5} " + " ".join(f"{name:>20}" for name in METHODS))
    for day in rounds_range:
        cells = [f"{hit_rate[n][day]:.3f} ({share[n][day]:.2f})" for n in METHODS]
        print(f"{day:>5} " + " ".join(f"{cell:>20}" for cell in cells))
    print(f"round {check}: ArtMatch / popularity = {ratio:.2f} (target >= 2.0; met: {result['target_met']})")
    print(f"seconds: {timings}, total {result['seconds']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
