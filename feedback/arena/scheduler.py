"""Which two recommenders to show next: spend votes where they settle the ranking soonest.

The arena is settled when neighbours in the ranking have separated 95% intervals. Each interval is of a strength
relative to the mean, so a close pair is settled by votes between the two *and* by votes that pin them to the rest
(uniform pairing wastes votes on far-apart, already clear pairs). PairScheduler plans the next batch of votes
greedily on the Fisher information of the votes so far, to shrink the variances of unresolved neighbours relative
to their gap, and samples pairs in proportion to the plan: many picks made from one cached leaderboard follow the
whole plan instead of piling onto one pair. With probability `explore` it picks uniformly, so no pair starves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from itertools import combinations

import numpy as np

from feedback.arena.ratings import BASE_RATING, ELO_PER_LOGIT, RIDGE, Leaderboard, pair_key

MIN_GAP_ELO = 15.0  # neighbours closer than this are "as good as each other": not worth endless votes
RESOLVED_WEIGHT = 0.05  # separated neighbours still get a little attention (the ranking may yet change)
BATCH_SHARE = 0.1  # plan for the votes likely cast before the next refit: 10% of those so far ...
BATCH_MIN = 50.0  # ... but at least this many
PLAN_STEPS = 100  # the plan is made in this many slices, whatever its size (cost independent of vote count)


class UniformScheduler:
    """A uniformly random pair in random side order: the baseline."""

    def pick(self, available: Sequence[str], leaderboard: Leaderboard | None, rng: random.Random) -> tuple[str, str]:
        pairs = _pairs(available)
        return _sides(rng.choice(pairs), rng)


class PairScheduler:
    """Picks which two recommenders to show for the next analysis."""

    def __init__(self, *, explore: float = 0.1) -> None:
        if not 0.0 <= explore <= 1.0:
            raise ValueError("explore must be within [0, 1]")
        self.explore = explore
        # the weights depend only on (leaderboard, names), and many picks share one leaderboard (often re-read
        # from its JSON cache, hence equality, not identity)
        self._cache: tuple[Leaderboard | None, tuple[str, ...], list[float]] | None = None

    def pick(self, available: Sequence[str], leaderboard: Leaderboard | None, rng: random.Random) -> tuple[str, str]:
        pairs = _pairs(available)
        if rng.random() < self.explore:
            return _sides(rng.choice(pairs), rng)
        names = tuple(sorted(set(available)))
        cached = self._cache
        if cached is not None and cached[1] == names and (cached[0] is leaderboard or cached[0] == leaderboard):
            weights = cached[2]
        else:
            weights = pair_priorities(names, leaderboard)
            self._cache = (leaderboard, names, weights)
        return _sides(rng.choices(pairs, weights=weights)[0], rng)


def pair_priorities(names: Sequence[str], leaderboard: Leaderboard | None) -> list[float]:
    """One weight per pair of sorted `names` (in itertools.combinations order); positive, sums to 1.

    The plan minimises J = sum over neighbours (a, b) in the current ranking of w_ab * (var_a + var_b) / gap_ab^2,
    with the variances of the centred strengths from the Fisher information of the votes so far (ties only scale
    it) and w_ab small once a and b are separated. Names missing from the leaderboard count as unvoted at the mean:
    their variance is huge, so the plan brings them in first.
    """
    m = len(names)
    pairs = list(combinations(range(m), 2))
    ratings = np.full(m, BASE_RATING)
    votes = np.zeros(len(pairs))
    if leaderboard is not None:
        for i, name in enumerate(names):
            rated = leaderboard.rating(name)
            if rated is not None:
                ratings[i] = rated.rating
        votes = np.array([leaderboard.pair_votes.get(pair_key(names[a], names[b]), 0) for a, b in pairs], float)
    if not votes.any():  # nothing known yet: every pair is as useful as any other
        return [1.0 / len(pairs)] * len(pairs)
    logits = (ratings - BASE_RATING) / ELO_PER_LOGIT
    p = 1.0 / (1.0 + np.exp(-(logits[[a for a, _ in pairs]] - logits[[b for _, b in pairs]])))
    per_vote = p * (1.0 - p)  # Fisher information of one vote on the pair

    design = np.zeros((len(pairs), m))  # x_ab = e_a - e_b
    design[np.arange(len(pairs)), [a for a, _ in pairs]] = 1.0
    design[np.arange(len(pairs)), [b for _, b in pairs]] = -1.0
    information = (design.T * (votes * per_vote)) @ design + RIDGE * np.eye(m)
    centre = np.eye(m) - 1.0 / m
    covariance = centre @ np.linalg.inv(information) @ centre

    # neighbours in the ranking, each weighted by 1 / gap^2 (less once their intervals no longer overlap)
    order = sorted(range(m), key=lambda i: (-ratings[i], names[i]))
    importance = np.zeros(m)
    for a, b in zip(order, order[1:], strict=False):
        gap = max(abs(ratings[a] - ratings[b]), MIN_GAP_ELO) / ELO_PER_LOGIT
        resolved = leaderboard is not None and leaderboard.separated(names[a], names[b])
        weight = (RESOLVED_WEIGHT if resolved else 1.0) / gap**2
        importance[a] += weight
        importance[b] += weight

    return _plan_batch(design, per_vote, covariance, importance, batch=max(BATCH_MIN, BATCH_SHARE * votes.sum()))


def _plan_batch(
    design: np.ndarray, per_vote: np.ndarray, covariance: np.ndarray, importance: np.ndarray, batch: float
) -> list[float]:
    """Greedy design of the next `batch` votes: each step gives a slice of them to the pair whose votes would cut
    J the most, then updates the covariance as if they had been cast. The shares are the pick weights, so the
    votes cast before the next refit follow a whole plan (adjacent pairs and the anchors that pin them to the
    mean), not just the single best pair of the moment."""
    unit = batch / PLAN_STEPS
    planned = np.zeros(len(design))
    covariance = covariance.copy()
    information = unit * per_vote
    for _ in range(PLAN_STEPS):
        shifted = design @ covariance  # row p: Σ x_p
        spread = np.einsum("pi,pi->p", shifted, design)  # x_p' Σ x_p
        gains = information * (shifted**2 @ importance) / (1.0 + information * spread)
        best = int(np.argmax(gains))
        row = shifted[best]
        covariance -= information[best] * np.outer(row, row) / (1.0 + information[best] * spread[best])
        planned[best] += 1
    planned += 1e-6  # every pair stays possible (explore covers them properly)
    return list(planned / planned.sum())


def _pairs(available: Sequence[str]) -> list[tuple[str, str]]:
    names = sorted(set(available))
    if len(names) < 2:
        raise ValueError("need at least two different recommenders")
    return list(combinations(names, 2))


def _sides(pair: tuple[str, str], rng: random.Random) -> tuple[str, str]:
    return pair if rng.random() < 0.5 else (pair[1], pair[0])
