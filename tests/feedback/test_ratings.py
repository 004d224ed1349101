"""Arena ratings: simulated votes from known strengths come back out, with honest intervals, quickly."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from feedback.arena import CHOICES, Leaderboard, VoteTable, fit
from feedback.arena.ratings import BASE_RATING, ELO_PER_LOGIT

NAMES = ["by_look", "by_meaning", "by_text_clip", "for_you", "fused"]
TRUE_ELO = np.array([1040.0, 1000.0, 900.0, 960.0, 1100.0])  # in NAMES order, already centred (mean 1000)


def simulate(
    count: int,
    rng: np.random.Generator,
    elo: np.ndarray = TRUE_ELO,
    left_advantage: float = 0.0,
    tie_share: float = 0.4,
    left_of: np.ndarray | None = None,
) -> VoteTable:
    """Votes whose expected left score is sigmoid(s_left - s_right + h), ties (both/neither) counting half.
    `left_of[i]`: probability that recommender i takes the left side when it is drawn first (default 0.5)."""
    m = len(elo)
    first = rng.integers(0, m, count)
    second = (first + rng.integers(1, m, count)) % m
    p_first_left = np.full(m, 0.5) if left_of is None else left_of
    swap = rng.random(count) >= p_first_left[first]
    left, right = np.where(swap, second, first), np.where(swap, first, second)
    s = (elo - elo.mean()) / ELO_PER_LOGIT
    p = 1.0 / (1.0 + np.exp(-(s[left] - s[right] + left_advantage / ELO_PER_LOGIT)))
    tie = 2.0 * tie_share * np.minimum(p, 1.0 - p)
    u = rng.random(count)
    tie_choice = np.where(rng.random(count) < 0.5, 2, 3)
    choice = np.where(u < p - tie / 2, 0, np.where(u < 1.0 - tie, 1, tie_choice))
    return VoteTable.from_arrays(left, right, choice, NAMES[:m])


def by_name(board: Leaderboard) -> dict[str, float]:
    return {r.name: r.rating for r in board.ratings}


def test_simulated_votes_recover_the_true_order_and_strengths() -> None:
    board = fit(simulate(20_000, np.random.default_rng(1)), bootstrap=300)
    truth = sorted(NAMES, key=lambda n: -TRUE_ELO[NAMES.index(n)])
    assert [r.name for r in board.ratings] == truth
    for name, rating in by_name(board).items():
        assert rating == pytest.approx(TRUE_ELO[NAMES.index(name)], abs=12)
    assert np.mean([r.rating for r in board.ratings]) == pytest.approx(BASE_RATING, abs=1e-6)
    assert all(r.ci_low < r.rating < r.ci_high for r in board.ratings)
    for a, b in zip(truth, truth[1:], strict=False):
        assert board.separated(a, b)


def test_left_bias_is_measured_and_does_not_distort_ratings_when_sides_are_random() -> None:
    rng = np.random.default_rng(2)
    fair = fit(simulate(20_000, rng), bootstrap=200)
    biased = fit(simulate(20_000, rng, left_advantage=100.0), bootstrap=200)
    assert biased.position_bias.left_advantage == pytest.approx(100.0, abs=12)
    assert biased.position_bias.ci_low > 0.55  # the left side clearly wins more decisive votes
    assert fair.position_bias.ci_low < 0.5 < fair.position_bias.ci_high
    assert abs(fair.position_bias.left_advantage) < 12
    for name in NAMES:
        assert by_name(biased)[name] == pytest.approx(TRUE_ELO[NAMES.index(name)], abs=12)


def test_home_term_corrects_a_recommender_that_mostly_sits_on_the_left() -> None:
    """by_text_clip (the weakest) is on the left 90% of its games and the left side has +120 Elo: its raw win
    rate is inflated, yet the fitted rating (which knows the side of every vote) is not."""
    left_of = np.array([0.5, 0.5, 0.9, 0.5, 0.5])
    table = simulate(30_000, np.random.default_rng(3), left_advantage=120.0, left_of=left_of)
    board = fit(table, bootstrap=100)
    weakest = board.rating("by_text_clip")
    assert weakest is not None and board.ratings[-1].name == "by_text_clip"
    assert weakest.rating == pytest.approx(900.0, abs=15)
    fair_board = fit(simulate(30_000, np.random.default_rng(3)), bootstrap=0)
    fair_weakest = fair_board.rating("by_text_clip")
    assert fair_weakest is not None and weakest.win_rate > fair_weakest.win_rate + 0.05


def test_ties_are_half_a_win_to_each_side() -> None:
    only_ties = fit(VoteTable.from_rows([("a", "b", "both", 7), ("b", "a", "neither", 5)]), bootstrap=50)
    a, b = only_ties.rating("a"), only_ties.rating("b")
    assert a is not None and b is not None
    assert a.rating == pytest.approx(1000.0, abs=1e-6) and b.rating == pytest.approx(1000.0, abs=1e-6)
    assert (a.votes, a.wins, a.losses, a.ties, a.win_rate) == (12, 0, 0, 12, 0.5)

    # a scores 0.8 (60 wins + 40 ties of 100) with sides balanced: odds 4, so a is 400*log10(4) above b
    rows = [("a", "b", "left", 30), ("b", "a", "right", 30), ("a", "b", "both", 20), ("b", "a", "neither", 20)]
    board = fit(VoteTable.from_rows(rows), bootstrap=0)
    a, b = board.rating("a"), board.rating("b")
    assert a is not None and b is not None
    assert a.rating - b.rating == pytest.approx(400 * math.log10(4), abs=0.5)
    assert board.position_bias.left_advantage == pytest.approx(0.0, abs=1e-6)
    assert (a.wins, a.losses, a.ties, a.win_rate) == (60, 0, 40, 0.8)
    assert (b.wins, b.losses, b.ties, b.win_rate) == (0, 60, 40, 0.2)


def test_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    inside = checks = bias_inside = 0
    s = (TRUE_ELO - TRUE_ELO.mean()) / ELO_PER_LOGIT
    p = 1 / (1 + np.exp(-(s[:, None] - s[None, :] + 40 / ELO_PER_LOGIT)))
    tie = 0.8 * np.minimum(p, 1 - p)
    off = ~np.eye(5, dtype=bool)
    true_left_rate = (p - tie / 2)[off].mean() / ((p - tie / 2)[off].mean() + (1 - p - tie / 2)[off].mean())
    runs = 60
    for run in range(runs):
        board = fit(simulate(1000, rng, left_advantage=40.0), bootstrap=400, seed=run)
        for r in board.ratings:
            inside += r.ci_low <= TRUE_ELO[NAMES.index(r.name)] <= r.ci_high
            checks += 1
        bias_inside += board.position_bias.ci_low <= true_left_rate <= board.position_bias.ci_high
    assert 0.88 <= inside / checks <= 0.995
    assert bias_inside / runs >= 0.85


def test_unvoted_recommenders_stay_at_the_mean_with_a_wide_interval_and_no_nan() -> None:
    table = VoteTable.from_rows([("a", "b", "left", 40), ("b", "a", "left", 30)], names=["new", "a"])
    assert table.names == ["a", "b", "new"]
    board = fit(table, bootstrap=200)
    new = board.rating("new")
    assert new is not None and new.votes == 0 and new.win_rate == 0.0
    assert new.rating == pytest.approx(1000.0, abs=1e-6)
    assert new.ci_high - new.ci_low >= 800
    assert board.ratings[-1].name == "new"  # unvoted ones are listed last
    assert not board.separated("new", "a") and not board.separated("new", "b")
    assert "NaN" not in board.to_json() and "Infinity" not in board.to_json()

    empty = fit(VoteTable.from_rows([], names=["x", "y"]))
    assert [r.rating for r in empty.ratings] == [1000.0, 1000.0]
    assert empty.total_votes == 0 and empty.position_bias.left_win_rate == 0.5
    assert (empty.position_bias.ci_low, empty.position_bias.ci_high) == (0.0, 1.0)
    assert Leaderboard.from_json(empty.to_json()) == empty


def test_one_sided_results_stay_finite_and_ordered() -> None:
    board = fit(VoteTable.from_rows([("a", "b", "left", 20), ("b", "a", "right", 20)]), bootstrap=100)
    a, b = board.rating("a"), board.rating("b")
    assert a is not None and b is not None
    assert all(math.isfinite(x) for r in (a, b) for x in (r.rating, r.ci_low, r.ci_high))
    assert a.rating > 1300 > 700 > b.rating


def test_json_round_trip_is_exact() -> None:
    board = fit(simulate(3000, np.random.default_rng(5), left_advantage=30.0), bootstrap=100, seed=3)
    text = board.to_json()
    again = Leaderboard.from_json(text)
    assert again == board
    assert again.to_json() == text
    assert json.loads(text)["pair_votes"]["by_look|fused"] == board.pair_votes["by_look|fused"] > 0


def test_pair_votes_and_totals() -> None:
    table = VoteTable.from_rows(
        [("a", "b", "left", 3), ("b", "a", "neither", 2), ("a", "c", "right", 4), ("a", "b", "left", 1)]
    )
    assert table.total == 10
    assert table.pair_votes("a", "b") == table.pair_votes("b", "a") == 6
    assert table.pair_votes("b", "c") == 0 and table.pair_votes("a", "zzz") == 0
    board = fit(table, bootstrap=10)
    assert board.pair_votes == {"a|b": 6, "a|c": 4, "b|c": 0}
    assert board.total_votes == 10 and board.bootstrap == 10
    assert sum(r.votes for r in board.ratings) == 2 * board.total_votes
    with pytest.raises(ValueError):
        VoteTable.from_rows([("a", "b", "maybe", 1)])


def test_from_arrays_counts_like_from_rows_and_renumbers_unsorted_names() -> None:
    names = ["zeta", "alpha", "mid"]  # not sorted: indices refer to this order
    left = np.array([0, 0, 1, 2, 1])
    right = np.array([1, 1, 2, 0, 0])
    choice = np.array([0, 0, 3, 1, 2])
    table = VoteTable.from_arrays(left, right, choice, names)
    expected = VoteTable.from_rows(
        [(names[i], names[j], CHOICES[c], 1) for i, j, c in zip(left, right, choice, strict=True)]
    )
    assert table.names == ["alpha", "mid", "zeta"] == expected.names
    np.testing.assert_array_equal(table.counts, expected.counts)
    assert table.counts.dtype == np.int64 and table.counts.shape == (3, 3, 4)
    with pytest.raises(ValueError):
        VoteTable.from_arrays(np.array([0, 3]), np.array([1, 1]), np.array([0, 0]), names)
    with pytest.raises(ValueError):
        VoteTable.from_arrays(np.array([0]), np.array([1]), np.array([4]), names)
    with pytest.raises(ValueError):
        VoteTable.from_arrays(np.array([0]), np.array([1, 2]), np.array([0]), names)


def test_bootstrap_is_reproducible_by_seed() -> None:
    table = simulate(2000, np.random.default_rng(6))
    first, again, other = fit(table, seed=1), fit(table, seed=1), fit(table, seed=2)
    assert first == again
    assert first.ratings[0].ci_low != other.ratings[0].ci_low
    assert [r.rating for r in first.ratings] == [r.rating for r in other.ratings]


def test_a_million_votes_fit_quickly() -> None:
    rng = np.random.default_rng(7)
    count = 1_000_000
    left = rng.integers(0, 5, count)
    right = (left + rng.integers(1, 5, count)) % 5
    choice = rng.integers(0, 4, count)
    started = time.perf_counter()
    table = VoteTable.from_arrays(left, right, choice, NAMES)
    board = fit(table, bootstrap=200)
    elapsed = time.perf_counter() - started
    assert board.total_votes == count
    assert elapsed < 10.0, f"from_arrays + fit took {elapsed:.2f} s"
