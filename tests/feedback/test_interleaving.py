"""Team-draft interleaving: fair prefixes, no duplicates, each team's own order, and credit as an arena vote."""

from __future__ import annotations

import random

import pytest

from feedback.arena.interleaving import Interleaved, credit, team_draft


def is_subsequence(items: list[int], of: list[int]) -> bool:
    it = iter(of)
    return all(item in it for item in items)


def test_team_draft_properties_on_random_rankings() -> None:
    rng = random.Random(0)
    first_team = set()
    for trial in range(500):
        pool = rng.sample(range(100), 30)
        a = rng.sample(pool, 12)  # overlapping rankings, as two recommenders over one gallery give
        b = rng.sample(pool, 12)
        k = rng.randint(1, 12)
        merged = team_draft(a, b, k, random.Random(trial))
        ids, teams = merged.artwork_ids, merged.teams
        assert len(ids) == len(teams) == k  # 12 items each: both can always contribute k / 2 new ones
        assert len(set(ids)) == len(ids)
        assert set(teams) <= {"a", "b"}
        for n in range(1, k + 1):
            assert abs(teams[:n].count("a") - teams[:n].count("b")) <= 1, (a, b, k)
        assert set(merged.ids_of("a")) <= set(a) and set(merged.ids_of("b")) <= set(b)
        assert is_subsequence(merged.ids_of("a"), a) and is_subsequence(merged.ids_of("b"), b)
        # each pick is the team's best work not yet taken
        taken: set[int] = set()
        for artwork_id, team in zip(ids, teams, strict=True):
            ranking = a if team == "a" else b
            assert artwork_id == next(x for x in ranking if x not in taken)
            taken.add(artwork_id)
        first_team.add(teams[0])
    assert first_team == {"a", "b"}  # the coin decides who starts


def test_identical_rankings_give_the_shared_prefix() -> None:
    ranking = [5, 4, 3, 2, 1, 0]
    merged = team_draft(ranking, ranking, 4, random.Random(1))
    assert merged.artwork_ids == [5, 4, 3, 2]
    assert sorted(merged.teams) == ["a", "a", "b", "b"]


def test_a_short_or_empty_ranking_lets_the_other_fill_the_set() -> None:
    merged = team_draft([1], [10, 11, 12, 13], 4, random.Random(2))
    assert sorted(merged.artwork_ids) == [1, 10, 11, 12]
    assert merged.ids_of("a") == [1] and merged.ids_of("b") == [10, 11, 12]
    only_b = team_draft([], [7, 8], 5, random.Random(3))
    assert only_b.artwork_ids == [7, 8] and only_b.teams == ["b", "b"]
    assert team_draft([1, 2], [2, 1], 10, random.Random(4)).artwork_ids in ([1, 2], [2, 1])
    assert team_draft([1, 2], [3, 4], 0, random.Random(5)).artwork_ids == []


def test_reproducible_with_the_same_rng() -> None:
    a, b = list(range(10)), list(range(10, 0, -1))
    assert team_draft(a, b, 8, random.Random(9)) == team_draft(a, b, 8, random.Random(9))


SET = Interleaved(artwork_ids=[10, 20, 11, 21], teams=["a", "b", "a", "b"])


@pytest.mark.parametrize(
    ("likes", "expected"),
    [
        ({}, None),
        ({99: 1}, None),  # not in the set
        ({10: 0, 20: 0}, None),  # cleared likes are no feedback
        ({10: 1}, "left"),
        ({21: 1}, "right"),
        ({20: -1}, "left"),  # a dislike of b's work is a point for a
        ({10: 1, 11: 1, 20: 1}, "left"),
        ({10: 1, 20: 1}, "both"),
        ({10: -1, 21: -1}, "neither"),
        ({10: 1, 11: -1}, "both"),  # equal credit, and something was liked
        ({11: -1, 20: 1, 21: 1, 10: 1}, "right"),
    ],
)
def test_credit(likes: dict[int, int], expected: str | None) -> None:
    assert credit(SET, likes) == expected


def test_ids_of() -> None:
    assert SET.ids_of("a") == [10, 11] and SET.ids_of("b") == [20, 21]
    with pytest.raises(ValueError):
        SET.ids_of("left")
