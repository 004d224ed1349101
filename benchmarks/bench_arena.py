"""Recommender arena: how fast the pair scheduler settles the ranking, whether the 95% intervals cover, and the
cost of a fit.

Simulated voters with a known truth: five recommenders on the Elo scale (one close pair), a left-side advantage,
and ties ("both" / "neither") about 30% of the time, generated so that a tie is half a win, exactly as the model
counts it (expected score of the left side = sigmoid(s_left - s_right + h)).

(a) votes until the fitted order is the true order and every pair of neighbours has separated 95% intervals
    (refit every --refit-every votes), PairScheduler against UniformScheduler;
(b) coverage of the 95% intervals (strengths and the left-side win rate) over repeated fixed-size simulations;
(c) from_arrays + fit(bootstrap=1000) on 1M votes.

    python benchmarks/bench_arena.py            # about 2 minutes on 2 cores
    python benchmarks/bench_arena.py --repeats 20 --coverage-repeats 200 --skip timing
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from the repository root; no model set-up needed (no common.py)

from feedback.arena import PairScheduler, UniformScheduler, VoteTable, fit  # noqa: E402
from feedback.arena.ratings import BASE_RATING, BOTH, ELO_PER_LOGIT, LEFT, NEITHER, RIGHT  # noqa: E402

NAMES = ["by_look", "by_meaning", "by_text_clip", "for_you", "fused"]
TRUE_ELO = {"fused": 1105.0, "by_look": 1035.0, "by_meaning": 1005.0, "for_you": 945.0, "by_text_clip": 895.0}
LEFT_ADVANTAGE_ELO = 30.0
TIE_SHARE = 0.42  # ties = 2 * TIE_SHARE * min(p, 1 - p): about 30% of the votes for these strengths


class Voters:
    """Outcome probabilities per ordered (left, right) pair of the simulated truth."""

    def __init__(self, names: list[str], true_elo: dict[str, float], left_advantage: float, tie_share: float):
        self.names = names
        elo = np.array([true_elo[n] for n in names])
        self.true_rating = elo - elo.mean() + BASE_RATING  # what a centred fit should find
        s = (elo - elo.mean()) / ELO_PER_LOGIT
        p = 1.0 / (1.0 + np.exp(-(s[:, None] - s[None, :] + left_advantage / ELO_PER_LOGIT)))
        tie = 2.0 * tie_share * np.minimum(p, 1.0 - p)
        self.left = p - tie / 2  # P(left), P(right), P(tie); E[left score] = left + tie / 2 = p
        self.right = 1.0 - p - tie / 2
        self.tie = tie
        self.index = {n: i for i, n in enumerate(names)}
        off = ~np.eye(len(names), dtype=bool)  # uniform pairing, random sides: the mean over ordered pairs
        self.tie_rate = float(self.tie[off].mean())
        self.left_rate = float(self.left[off].mean() / (self.left[off].mean() + self.right[off].mean()))

    def vote(self, i: int, j: int, rng: random.Random) -> int:
        u = rng.random()
        if u < self.left[i, j]:
            return LEFT
        if u < self.left[i, j] + self.right[i, j]:
            return RIGHT
        return BOTH if rng.random() < 0.5 else NEITHER

    def uniform_votes(self, count: int, rng: np.random.Generator) -> VoteTable:
        m = len(self.names)
        left = rng.integers(0, m, count)
        right = (left + rng.integers(1, m, count)) % m
        u = rng.random(count)
        p_left, p_right = self.left[left, right], self.right[left, right]
        tie = np.where(rng.random(count) < 0.5, BOTH, NEITHER)
        choice = np.where(u < p_left, LEFT, np.where(u < p_left + p_right, RIGHT, tie))
        return VoteTable.from_arrays(left, right, choice, self.names)


def votes_to_settle(
    voters: Voters, scheduler: PairScheduler | UniformScheduler, seed: int, refit_every: int, cap: int, bootstrap: int
) -> int:
    """Votes until the fitted order is the true one and all neighbours are separated (cap if never)."""
    rng = random.Random(seed)
    m = len(voters.names)
    counts = np.zeros((m, m, 4), dtype=np.int64)
    truth = sorted(voters.names, key=lambda n: -voters.true_rating[voters.index[n]])
    board = None
    for done in range(1, cap + 1):
        left, right = scheduler.pick(voters.names, board, rng)
        i, j = voters.index[left], voters.index[right]
        counts[i, j, voters.vote(i, j, rng)] += 1
        if done % refit_every == 0:
            board = fit(VoteTable(voters.names, counts.copy()), bootstrap=bootstrap, seed=done)
            order = [r.name for r in board.ratings]
            if order == truth and all(board.separated(a, b) for a, b in zip(order, order[1:], strict=False)):
                return done
    return cap


def summary(values: list[int]) -> dict[str, float]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(median), "q1": float(q1), "q3": float(q3), "mean": round(float(np.mean(values)), 1)}


def scheduling(voters: Voters, args: argparse.Namespace) -> dict[str, object]:
    results: dict[str, object] = {}
    needed: dict[str, list[int]] = {}
    for name, make in (("uniform", UniformScheduler), ("pair", lambda: PairScheduler(explore=args.explore))):
        started = time.perf_counter()
        needed[name] = [
            votes_to_settle(voters, make(), args.seed + r, args.refit_every, args.cap, args.settle_bootstrap)
            for r in range(args.repeats)
        ]
        stats = summary(needed[name])
        capped = sum(v >= args.cap for v in needed[name])
        seconds = round(time.perf_counter() - started, 1)
        print(f"  {name:8s} median {stats['median']:6.0f}  IQR {stats['q1']:.0f}-{stats['q3']:.0f}  "
              f"mean {stats['mean']:.0f}  capped {capped}/{args.repeats}  ({seconds} s)")
        results[name] = {**stats, "capped": capped, "seconds": seconds, "votes": needed[name]}
    ratio = round(float(np.median(needed["uniform"]) / np.median(needed["pair"])), 2)
    mean_ratio = round(float(np.mean(needed["uniform"]) / np.mean(needed["pair"])), 2)
    # paired by seed: the same seed starts both runs (they diverge with the first different pick)
    faster = sum(p < u for p, u in zip(needed["pair"], needed["uniform"], strict=True))
    slower = sum(p > u for p, u in zip(needed["pair"], needed["uniform"], strict=True))
    print(f"  uniform / pair: medians {ratio}x, means {mean_ratio}x; pair faster in {faster}, slower in {slower} "
          f"of {args.repeats} seeds")
    results.update(ratio_median_uniform_over_pair=ratio, ratio_mean_uniform_over_pair=mean_ratio,
                   pair_faster_in=faster, pair_slower_in=slower)
    return results


def coverage(voters: Voters, args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    inside = np.zeros(len(voters.names))
    bias_inside = 0
    widths, advantages = [], []
    for r in range(args.coverage_repeats):
        board = fit(voters.uniform_votes(args.coverage_votes, rng), bootstrap=args.bootstrap, seed=r)
        for k, name in enumerate(voters.names):
            rating = board.rating(name)
            assert rating is not None
            inside[k] += rating.ci_low <= voters.true_rating[k] <= rating.ci_high
            widths.append(rating.ci_high - rating.ci_low)
        bias = board.position_bias
        bias_inside += bias.ci_low <= voters.left_rate <= bias.ci_high
        advantages.append(bias.left_advantage)
    per = {name: round(float(inside[k] / args.coverage_repeats), 3) for k, name in enumerate(voters.names)}
    return {
        "repeats": args.coverage_repeats,
        "votes": args.coverage_votes,
        "bootstrap": args.bootstrap,
        "per_recommender": per,
        "overall": round(float(inside.sum() / (args.coverage_repeats * len(voters.names))), 3),
        "mean_ci_width_elo": round(float(np.mean(widths)), 1),
        "position_bias": round(bias_inside / args.coverage_repeats, 3),
        "true_left_win_rate": round(voters.left_rate, 4),
        "left_advantage_elo": {
            "true": LEFT_ADVANTAGE_ELO,
            "mean": round(float(np.mean(advantages)), 1),
            "sd": round(float(np.std(advantages)), 1),
        },
    }


def timing(voters: Voters, args: argparse.Namespace) -> dict[str, object]:
    rng = np.random.default_rng(args.seed)
    m = len(voters.names)
    count = args.timing_votes
    left = rng.integers(0, m, count)
    right = (left + rng.integers(1, m, count)) % m
    choice = rng.integers(0, 4, count)
    table_s, fit_s = [], []
    for r in range(5):
        started = time.perf_counter()
        table = VoteTable.from_arrays(left, right, choice, voters.names)
        built = time.perf_counter()
        fit(table, bootstrap=1000, seed=r)
        table_s.append(built - started)
        fit_s.append(time.perf_counter() - built)
    total = [a + b for a, b in zip(table_s, fit_s, strict=True)]
    return {
        "votes": count,
        "bootstrap": 1000,
        "from_arrays_ms": round(1000 * float(np.median(table_s)), 1),
        "fit_ms": round(1000 * float(np.median(fit_s)), 1),
        "total_ms_median_of_5": round(1000 * float(np.median(total)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100, help="simulations per scheduler in (a)")
    parser.add_argument("--cap", type=int, default=30_000, help="give up after this many votes in (a)")
    parser.add_argument("--refit-every", type=int, default=100)
    parser.add_argument("--settle-bootstrap", type=int, default=200)
    parser.add_argument("--explore", type=float, default=0.1)
    parser.add_argument("--coverage-repeats", type=int, default=1000)
    parser.add_argument("--coverage-votes", type=int, default=2000)
    parser.add_argument("--bootstrap", type=int, default=1000, help="replicates in (b)")
    parser.add_argument("--timing-votes", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", choices=["scheduling", "coverage", "timing"], action="append", default=[])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "arena.json")
    args = parser.parse_args()

    voters = Voters(NAMES, TRUE_ELO, LEFT_ADVANTAGE_ELO, TIE_SHARE)
    result: dict[str, object] = {
        "truth": {
            "elo_centred": {n: round(float(voters.true_rating[voters.index[n]]), 1) for n in NAMES},
            "left_advantage_elo": LEFT_ADVANTAGE_ELO,
            "tie_rate_uniform_pairs": round(voters.tie_rate, 3),
            "left_win_rate_decisive": round(voters.left_rate, 4),
        },
        "machine": f"{os.cpu_count()} CPU cores",
    }
    print(f"truth: {result['truth']}")
    if "scheduling" not in args.skip:
        print(f"(a) votes to settle the ranking ({args.repeats} runs each, refit every {args.refit_every}, "
              f"bootstrap {args.settle_bootstrap}, cap {args.cap}):")
        result["scheduling"] = {
            "refit_every": args.refit_every, "bootstrap": args.settle_bootstrap, "cap": args.cap,
            "explore": args.explore, "repeats": args.repeats, **scheduling(voters, args),
        }
    if "coverage" not in args.skip:
        c = coverage(voters, args)
        result["coverage"] = c
        print(f"(b) coverage of the 95% intervals, {args.coverage_repeats} runs x {args.coverage_votes} votes "
              f"(uniform pairs, bootstrap {args.bootstrap}): overall {c['overall']}, per recommender "
              f"{c['per_recommender']}, mean width {c['mean_ci_width_elo']} Elo; left-win-rate interval "
              f"{c['position_bias']}; left advantage {c['left_advantage_elo']}")
    if "timing" not in args.skip:
        t = timing(voters, args)
        result["timing"] = t
        print(f"(c) {t['votes']} votes: from_arrays {t['from_arrays_ms']} ms + fit(bootstrap=1000) {t['fit_ms']} ms "
              f"= {t['total_ms_median_of_5']} ms (median of 5)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
