"""Pair scheduling: always two different recommenders, sides at random, and votes go where they are needed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from feedback.arena import Leaderboard, PairScheduler, UniformScheduler, VoteTable, fit
from feedback.arena.scheduler import pair_priorities

NAMES = ["by_look", "by_meaning", "by_text_clip", "for_you", "fused"]


def pair_counts(
    scheduler: PairScheduler | UniformScheduler,
    available: list[str],
    board: Leaderboard | None,
    picks: int,
    seed: int = 0,
) -> tuple[Counter[str], Counter[str]]:
    rng = random.Random(seed)
    chosen: Counter[str] = Counter()
    left_count: Counter[str] = Counter()
    for _ in range(picks):
        left, right = scheduler.pick(available, board, rng)
        assert left != right and left in available and right in available
        chosen["|".join(sorted((left, right)))] += 1
        left_count[left] += 1
    return chosen, left_count


def board_from(rows: list[tuple[str, str, str, int]], names: list[str] = NAMES) -> Leaderboard:
    return fit(VoteTable.from_rows(rows, names=names), bootstrap=200)


def balanced_rows(a: str, b: str, wins_a: int, wins_b: int, ties: int) -> list[tuple[str, str, str, int]]:
    """Votes between a and b with every outcome split evenly over both side orders (no position effect)."""
    return [
        (a, b, "left", wins_a), (b, a, "right", wins_a),
        (a, b, "right", wins_b), (b, a, "left", wins_b),
        (a, b, "both", ties), (b, a, "neither", ties),
    ]  # fmt: skip


@pytest.mark.parametrize("scheduler", [PairScheduler(), PairScheduler(explore=0.0), UniformScheduler()])
def test_never_the_same_name_twice_and_sides_are_random(scheduler: PairScheduler | UniformScheduler) -> None:
    board = board_from(balanced_rows("by_look", "fused", 30, 20, 10) + balanced_rows("for_you", "fused", 5, 30, 5))
    available = NAMES + ["by_look"]  # a duplicate in the input must not produce a self-pair
    chosen, left_count = pair_counts(scheduler, available, board, 4000)
    shown: Counter[str] = Counter()
    for key, count in chosen.items():
        for name in key.split("|"):
            shown[name] += count
    for name, count in shown.items():  # on the left in about half of its appearances
        assert abs(left_count[name] / count - 0.5) < 0.06, name


@pytest.mark.parametrize("scheduler", [PairScheduler(), UniformScheduler()])
def test_fewer_than_two_recommenders_is_an_error(scheduler: PairScheduler | UniformScheduler) -> None:
    for available in ([], ["fused"], ["fused", "fused"]):
        with pytest.raises(ValueError):
            scheduler.pick(available, None, random.Random(0))


def test_deterministic_given_the_rng() -> None:
    board = board_from(balanced_rows("by_look", "fused", 30, 20, 10))
    first = [PairScheduler().pick(NAMES, board, rng) for rng in [random.Random(5)] for _ in range(50)]
    again = [PairScheduler().pick(NAMES, board, rng) for rng in [random.Random(5)] for _ in range(50)]
    assert first == again


def test_prefers_pairs_with_few_votes() -> None:
    """Three equally good recommenders; a|b already has 2000 votes, the other pairs 20: a|b is picked rarely."""
    rows = balanced_rows("a", "b", 300, 300, 400) + balanced_rows("a", "c", 3, 3, 4) + balanced_rows("b", "c", 3, 3, 4)
    board = board_from(rows, names=["a", "b", "c"])
    chosen, _ = pair_counts(PairScheduler(), ["a", "b", "c"], board, 3000)
    assert chosen["a|b"] / 3000 < 0.15  # uniform would give a third
    assert chosen["a|c"] > 3 * chosen["a|b"] and chosen["b|c"] > 3 * chosen["a|b"]
    uniform, _ = pair_counts(UniformScheduler(), ["a", "b", "c"], board, 3000)
    assert abs(uniform["a|b"] / 3000 - 1 / 3) < 0.04


def test_focuses_on_overlapping_neighbours_not_on_settled_far_apart_pairs() -> None:
    """top >> (mid1 ~ mid2) >> bottom, 100 votes on every pair: the close middle pair overlaps and deserves more
    votes; top against bottom is settled and gets little more than exploration."""
    names = ["bottom", "mid1", "mid2", "top"]
    score = {"top": 3, "mid1": 1.05, "mid2": 1.0, "bottom": -1}
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            share = 1 / (1 + 10 ** ((score[b] - score[a]) / 2))  # a's expected score
            wins_a = round(40 * share)
            rows += balanced_rows(a, b, wins_a, 40 - wins_a, 5)
    board = board_from(rows, names=names)
    assert not board.separated("mid1", "mid2") and board.separated("top", "bottom")
    chosen, _ = pair_counts(PairScheduler(), names, board, 6000)
    assert chosen["mid1|mid2"] == max(chosen.values())
    assert chosen["mid1|mid2"] / 6000 > 0.3  # uniform: 1/6
    assert chosen["bottom|top"] / 6000 < 0.05  # about the explore share of 1/6 of 10%


def test_names_missing_from_the_leaderboard_are_brought_in() -> None:
    rows = balanced_rows("by_look", "fused", 300, 200, 100) + balanced_rows("by_look", "for_you", 30, 20, 10)
    board = board_from(rows, names=["by_look", "for_you", "fused"])
    available = ["by_look", "for_you", "fused", "brand_new"]
    chosen, _ = pair_counts(PairScheduler(), available, board, 2000)
    with_new = sum(count for key, count in chosen.items() if "brand_new" in key)
    assert with_new / 2000 > 0.6  # uniform: 1/2


def test_without_a_leaderboard_every_pair_is_equally_likely() -> None:
    chosen, _ = pair_counts(PairScheduler(), NAMES, None, 10_000)
    assert len(chosen) == 10
    assert all(abs(count / 10_000 - 0.1) < 0.02 for count in chosen.values())
    assert pair_priorities(NAMES, None) == pytest.approx([0.1] * 10)


def test_explore_one_is_uniform_and_explore_is_validated() -> None:
    rows = balanced_rows("a", "b", 300, 300, 400) + balanced_rows("a", "c", 3, 3, 4)
    board = board_from(rows, names=["a", "b", "c"])
    chosen, _ = pair_counts(PairScheduler(explore=1.0), ["a", "b", "c"], board, 3000)
    assert all(abs(count / 3000 - 1 / 3) < 0.04 for count in chosen.values())
    for explore in (-0.1, 1.5):
        with pytest.raises(ValueError):
            PairScheduler(explore=explore)


def test_priorities_are_a_distribution_over_all_pairs() -> None:
    board = board_from(balanced_rows("by_look", "fused", 30, 20, 10))
    weights = pair_priorities(NAMES, board)
    assert len(weights) == 10 and sum(weights) == pytest.approx(1.0)
    assert all(w > 0 for w in weights)
