"""Team-draft interleaving (Radlinski, Kurup & Joachims 2008): one merged set instead of two side-by-side sets.

Each round the team with fewer picks (a coin flip on a draw) adds its best work not yet in the set, so every
prefix of the merged set is fair to both recommenders. Likes and dislikes on single works are then credited to the
team that contributed them; the outcome is a vote in the arena's vocabulary, team "a" as the left side and "b" as
the right, so interleaved comparisons feed the same VoteTable as side-by-side ones.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

TEAMS = ("a", "b")


@dataclass(frozen=True)
class Interleaved:
    artwork_ids: list[int]  # the merged set in display order, no duplicates
    teams: list[str]  # "a" or "b" per position: which recommender contributed it

    def ids_of(self, team: str) -> list[int]:
        if team not in TEAMS:
            raise ValueError(f"team must be one of {TEAMS}")
        return [artwork_id for artwork_id, owner in zip(self.artwork_ids, self.teams, strict=True) if owner == team]


def team_draft(a: Sequence[int], b: Sequence[int], k: int, rng: random.Random) -> Interleaved:
    """Merge up to k works from the rankings a and b; stops early when both are used up."""
    ranked = {"a": list(a), "b": list(b)}
    cursor = {"a": 0, "b": 0}
    picks = {"a": 0, "b": 0}
    chosen: list[int] = []
    teams: list[str] = []
    seen: set[int] = set()

    def next_new(team: str) -> int | None:
        """The team's best work not yet in the set (advancing past the ones the other team already took)."""
        items = ranked[team]
        while cursor[team] < len(items) and items[cursor[team]] in seen:
            cursor[team] += 1
        return items[cursor[team]] if cursor[team] < len(items) else None

    while len(chosen) < k:
        if picks["a"] != picks["b"]:
            team = "a" if picks["a"] < picks["b"] else "b"
        else:
            team = "a" if rng.random() < 0.5 else "b"
        item = next_new(team)
        if item is None:  # this team has nothing new left: the other one fills the set
            team = "b" if team == "a" else "a"
            item = next_new(team)
            if item is None:
                break
        chosen.append(item)
        teams.append(team)
        seen.add(item)
        picks[team] += 1
    return Interleaved(artwork_ids=chosen, teams=teams)


def credit(interleaved: Interleaved, likes: Mapping[int, int]) -> str | None:
    """The vote the feedback amounts to: likes minus dislikes per team. None without any feedback on the set."""
    owner = dict(zip(interleaved.artwork_ids, interleaved.teams, strict=True))
    score = {"a": 0, "b": 0}
    liked = disliked = 0
    for artwork_id, value in likes.items():
        team = owner.get(artwork_id)
        if team is None or value == 0:  # not in this set, or a cleared like
            continue
        sign = 1 if value > 0 else -1
        score[team] += sign
        liked += sign > 0
        disliked += sign < 0
    if not liked and not disliked:
        return None
    if score["a"] != score["b"]:
        return "left" if score["a"] > score["b"] else "right"
    return "both" if liked else "neither"
