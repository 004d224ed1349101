"""The photo flow's decisions without Telegram: what the cache answers, what is asked for, what the cache learns."""

from __future__ import annotations

import random

import pytest

from bot.arena import Matchup
from bot.photo_plan import CachedAnalysis, Merged, cache_update, interleave, merge, plan_photo
from inference.contract import AnalyzeResponse, Hit, Match

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
    merged = merge(p, {"by_look": hits(1)}, None)
    assert [h.artwork_id for h in merged.sets["by_look"]] == [1]
    assert merged.description == "cached" and merged.models == {"m": 1} and merged.match is None
    fresh = AnalyzeResponse(image_sha256="x", recommendations={"by_meaning": hits(3)}, description="new")
    p2 = plan("by_look", "by_meaning")
    merged = merge(p2, {"by_look": hits(1)}, fresh)
    assert [h.artwork_id for h in merged.sets["by_meaning"]] == [3] and merged.description == "new"


def recognised(artwork_id: int) -> Match:
    return Match(artwork_id=artwork_id, title=f"Work {artwork_id}", confidence=0.99, inliers=40, corners=[(0, 0)] * 4)


def test_the_match_comes_from_the_cache_then_the_look_then_the_analysis() -> None:
    fresh = AnalyzeResponse(image_sha256="x", recommendations={"by_meaning": hits(3)}, match=recognised(7))
    assert merge(plan("by_look", "by_meaning"), {}, fresh).match == recognised(7)
    assert merge(plan("by_look", "by_meaning"), {}, fresh, recognised(5)).match == recognised(5)
    cached = CachedAnalysis(recommendations={"by_meaning": hits(2)}, match=recognised(4))
    assert merge(plan("by_look", "by_meaning", cached), {}, None).match == recognised(4)


def test_the_cache_learns_new_shared_sets_but_never_personal_ones() -> None:
    p = plan("for_you", "by_meaning")
    merged = Merged({"for_you": hits(9), "by_meaning": hits(2)}, "d", {}, None)
    entry = cache_update(p, merged, {}, PERSONAL.__contains__)
    assert entry is not None and set(entry.recommendations) == {"by_meaning"}
    cached = CachedAnalysis(description="d", recommendations={"by_meaning": hits(2)})
    same = plan("for_you", "by_meaning", cached)
    assert cache_update(same, merged, {}, PERSONAL.__contains__) is None


def test_the_cache_keeps_the_match_and_each_language_once_translated() -> None:
    cached = CachedAnalysis(description="d", recommendations={"by_meaning": hits(2)}, translations={"ru": "д"})
    p = plan("by_meaning", "by_look", cached)
    merged = Merged({"by_meaning": hits(2), "by_look": hits(1)}, "d", {}, recognised(3))
    entry = cache_update(p, merged, {"de": "d-de"}, PERSONAL.__contains__)
    assert entry is not None and entry.match == recognised(3)
    assert entry.translations == {"ru": "д", "de": "d-de"}
    assert CachedAnalysis.parse(entry.model_dump(mode="json")) == entry  # survives the JSON round trip


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
