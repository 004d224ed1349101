"""The photo flow's decisions without Telegram: what the cache answers, what is asked for, what the cache learns."""

from __future__ import annotations

import random

import pytest

from bot.arena import Matchup
from bot.photo_plan import CachedAnalysis, cache_update, interleave, merge, plan_photo
from inference.contract import AnalyzeResponse, Hit

PERSONAL = {"for_you"}
FAST = {"by_look"}


def hits(*ids: int) -> list[Hit]:
    return [Hit(artwork_id=i, title=f"Work {i}") for i in ids]


def plan(left: str, right: str, cached: CachedAnalysis | None = None, mode: str = "sides"):  # type: ignore[no-untyped-def]
    return plan_photo(
        Matchup(left, right, mode),  # type: ignore[arg-type]
        cached or CachedAnalysis(),
        is_personal=PERSONAL.__contains__,
        is_fast=FAST.__contains__,
    )


def test_a_new_photo_looks_first_and_analyzes_the_rest() -> None:
    p = plan("by_meaning", "by_look")
    assert p.first == "by_look" and p.look == "by_look"
    assert p.analyze == ("by_meaning",) and not p.personal and not p.from_cache


def test_a_fully_cached_photo_asks_the_service_for_nothing() -> None:
    cached = CachedAnalysis(description="d", recommendations={"by_look": hits(1), "by_meaning": hits(2)})
    p = plan("by_look", "by_meaning", cached)
    assert p.look is None and p.analyze == () and p.from_cache
    assert p.first == "by_look"  # still shown first, from the cache


def test_a_partly_cached_photo_asks_only_for_the_missing_set() -> None:
    cached = CachedAnalysis(description="d", recommendations={"by_meaning": hits(2)})
    p = plan("by_look", "by_meaning", cached)
    assert p.look == "by_look" and p.analyze == ()


@pytest.mark.parametrize("cached", [CachedAnalysis(), CachedAnalysis(recommendations={"for_you": hits(9)})])
def test_personal_sets_are_always_computed_with_the_feedback(cached: CachedAnalysis) -> None:
    p = plan("for_you", "by_meaning", cached)
    assert "for_you" in p.analyze and p.personal and p.first is None


def test_interleaving_shows_no_set_before_the_description() -> None:
    p = plan("by_look", "by_meaning", mode="interleaved")
    assert p.first is None and p.look is None and set(p.analyze) == {"by_look", "by_meaning"}


def test_merge_prefers_fresh_answers_and_keeps_the_cached_description_when_none_came() -> None:
    cached = CachedAnalysis(description="cached", models={"m": 1}, recommendations={"by_meaning": hits(2)})
    p = plan("by_look", "by_meaning", cached)
    have, description, models = merge(p, {"by_look": hits(1)}, None)
    assert [h.artwork_id for h in have["by_look"]] == [1] and description == "cached" and models == {"m": 1}
    fresh = AnalyzeResponse(image_sha256="x", recommendations={"by_meaning": hits(3)}, description="new")
    p2 = plan("by_look", "by_meaning")
    have, description, _ = merge(p2, {"by_look": hits(1)}, fresh)
    assert [h.artwork_id for h in have["by_meaning"]] == [3] and description == "new"


def test_the_cache_learns_new_shared_sets_but_never_personal_ones() -> None:
    p = plan("for_you", "by_meaning")
    entry = cache_update(p, {"for_you": hits(9), "by_meaning": hits(2)}, "d", {}, PERSONAL.__contains__)
    assert entry is not None and set(entry.recommendations) == {"by_meaning"}
    cached = CachedAnalysis(description="d", recommendations={"by_meaning": hits(2)})
    same = plan("for_you", "by_meaning", cached)
    assert cache_update(same, {"for_you": hits(9), "by_meaning": hits(2)}, "d", {}, PERSONAL.__contains__) is None


def test_an_unreadable_cache_entry_counts_as_none() -> None:
    assert CachedAnalysis.parse({"recommendations": {"by_look": [{"title": "no id"}]}}) == CachedAnalysis()
    assert CachedAnalysis.parse(None) == CachedAnalysis()


def test_interleave_credits_each_shown_work_to_the_team_that_brought_it() -> None:
    matchup = Matchup("by_look", "by_meaning", "interleaved")
    display, teams = interleave(matchup, {"by_look": hits(1, 2, 3), "by_meaning": hits(3, 4, 5)}, 4, random.Random(7))
    shown = [h.artwork_id for h in display]
    assert len(shown) == 4 and len(set(shown)) == 4
    credited = [h.artwork_id for team in teams.values() for h in team]
    assert sorted(credited) == sorted(shown)
    assert {h.artwork_id for h in teams["by_look"]} <= {1, 2, 3}
    assert {h.artwork_id for h in teams["by_meaning"]} <= {3, 4, 5}
