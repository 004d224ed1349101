"""Ratings of the recommenders from the arena votes: Bradley–Terry with a left-side (home) advantage.

P(left i beats right j) = sigmoid(s_i - s_j + h). A tie ("both" good or "neither") is half a win to each side, so
the fit is the quasi-likelihood of the expected score and stays consistent however often people tie.

Everything runs on the aggregated (M, M, 4) count table, never on single votes: the fit costs the same for a
hundred votes as for a million. Bootstrapping votes with replacement is the same as drawing the whole table from a
multinomial with the observed cell frequencies, so 1000 replicates cost 1000 small tables, fitted all at once by a
batched Newton–Raphson.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from inference.contract import VOTE_CHOICES as CHOICES

LEFT, RIGHT, BOTH, NEITHER = range(len(CHOICES))

ELO_PER_LOGIT = 400.0 / math.log(10.0)  # 400 Elo points = tenfold odds
BASE_RATING = 1000.0
RIDGE = 1e-3  # keeps unvoted recommenders at the mean and separated data finite; far below any real information
UNRATED_HALF_WIDTH = 400.0  # Elo: an interval for a recommender nobody has voted on yet ("could be anywhere")
Z95 = 1.959963984540054

_MAX_ITERATIONS = 100
_MAX_STEP = 4.0  # logits per Newton step: keeps the first steps on (nearly) separated data from overshooting
_TOLERANCE = 1e-10


class VoteTable:
    """Aggregated vote counts per (left recommender, right recommender, choice).

    `names` are sorted and include recommenders without votes; counts[i, j, c] = votes with names[i] on the left,
    names[j] on the right and choice CHOICES[c]. A recommender against itself only informs the position bias.
    """

    names: list[str]
    counts: np.ndarray

    def __init__(self, names: Sequence[str], counts: np.ndarray) -> None:
        names = list(names)
        if names != sorted(set(names)):
            raise ValueError("names must be sorted and unique")
        array = np.asarray(counts, dtype=np.int64)
        if array.shape != (len(names), len(names), len(CHOICES)):
            raise ValueError(f"counts must have shape {(len(names), len(names), len(CHOICES))}, got {array.shape}")
        if (array < 0).any():
            raise ValueError("counts must not be negative")
        self.names = names
        self.counts = array
        self._index = {name: i for i, name in enumerate(names)}

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str, str, int]], names: Iterable[str] = ()) -> VoteTable:
        """From (left_name, right_name, choice, count) rows, e.g. a SQL GROUP BY; `names` adds unvoted ones."""
        cells: dict[tuple[str, str, int], int] = {}
        known = set(names)
        for left, right, choice, count in rows:
            if choice not in CHOICES:
                raise ValueError(f"unknown choice {choice!r}")
            key = (left, right, CHOICES.index(choice))
            cells[key] = cells.get(key, 0) + int(count)
            known.update((left, right))
        ordered = sorted(known)
        index = {name: i for i, name in enumerate(ordered)}
        counts = np.zeros((len(ordered), len(ordered), len(CHOICES)), dtype=np.int64)
        for (left, right, choice_index), count in cells.items():
            counts[index[left], index[right], choice_index] += count
        return cls(ordered, counts)

    @classmethod
    def from_arrays(cls, left: np.ndarray, right: np.ndarray, choice: np.ndarray, names: Sequence[str]) -> VoteTable:
        """From raw votes as index arrays into `names` (and CHOICES): one np.bincount, no Python loop."""
        names = list(names)
        m = len(names)
        if len(set(names)) != m:
            raise ValueError("names must be unique")
        arrays = [np.asarray(a, dtype=np.int64).ravel() for a in (left, right, choice)]
        if len({a.size for a in arrays}) != 1:
            raise ValueError("left, right and choice must have the same length")
        for array, limit in zip(arrays, (m, m, len(CHOICES)), strict=True):
            if array.size and (array.min() < 0 or array.max() >= limit):
                raise ValueError("index out of range")
        left_index, right_index, choice_index = arrays
        order = sorted(range(m), key=names.__getitem__)
        if order != list(range(m)):  # the table keeps names sorted: renumber the sides
            rank = np.empty(m, dtype=np.int64)
            rank[order] = np.arange(m)
            left_index, right_index = rank[left_index], rank[right_index]
        flat = (left_index * m + right_index) * len(CHOICES) + choice_index
        counts = np.bincount(flat, minlength=m * m * len(CHOICES)).reshape(m, m, len(CHOICES))
        return cls(sorted(names), counts)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def pair_votes(self, a: str, b: str) -> int:
        """Votes between a and b in either side order (0 for an unknown name)."""
        if a not in self._index or b not in self._index:
            return 0
        i, j = self._index[a], self._index[b]
        if i == j:
            return int(self.counts[i, i].sum())
        return int(self.counts[i, j].sum() + self.counts[j, i].sum())

    def __repr__(self) -> str:
        return f"VoteTable(names={self.names!r}, total={self.total})"


@dataclass(frozen=True)
class Rating:
    name: str
    rating: float  # Elo-like: 1000 + 400 * log10-odds, mean of all recommenders = 1000
    ci_low: float
    ci_high: float
    votes: int
    wins: int
    losses: int
    ties: int
    win_rate: float  # (wins + ties / 2) / votes; 0.0 without votes


@dataclass(frozen=True)
class PositionBias:
    left_win_rate: float  # among decisive (left/right) votes; 0.5 = no bias
    ci_low: float
    ci_high: float
    left_advantage: float  # the fitted home-advantage term h, in Elo points


@dataclass(frozen=True)
class Leaderboard:
    ratings: list[Rating]  # best first (recommenders without votes last)
    position_bias: PositionBias
    total_votes: int
    pair_votes: dict[str, int]  # "a|b" with a < b -> votes between them
    bootstrap: int

    def rating(self, name: str) -> Rating | None:
        return next((r for r in self.ratings if r.name == name), None)

    def separated(self, a: str, b: str) -> bool:
        """Whether the two 95% intervals do not overlap (False when either is unknown)."""
        first, second = self.rating(a), self.rating(b)
        if first is None or second is None or a == b:
            return False
        return first.ci_high < second.ci_low or second.ci_high < first.ci_low

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Leaderboard:
        data: dict[str, Any] = json.loads(text)
        return cls(
            ratings=[Rating(**r) for r in data["ratings"]],
            position_bias=PositionBias(**data["position_bias"]),
            total_votes=int(data["total_votes"]),
            pair_votes={str(k): int(v) for k, v in data["pair_votes"].items()},
            bootstrap=int(data["bootstrap"]),
        )


def pair_key(a: str, b: str) -> str:
    """The Leaderboard.pair_votes key of an unordered pair."""
    return f"{a}|{b}" if a < b else f"{b}|{a}"


def fit(table: VoteTable, *, bootstrap: int = 1000, seed: int = 0) -> Leaderboard:
    """Point estimates by Newton–Raphson; 95% percentile intervals from `bootstrap` multinomial replicates."""
    if bootstrap < 0:
        raise ValueError("bootstrap must be >= 0")
    m, total = len(table.names), table.total
    batch_strengths, batch_home = fit_strengths(table.counts[None])
    strengths, home = batch_strengths[0], float(batch_home[0])
    low, high = strengths.copy(), strengths.copy()  # no replicates: the interval collapses to the estimate
    if bootstrap and total and m:
        rng = np.random.default_rng(seed)
        probabilities = table.counts.ravel() / total
        replicates = rng.multinomial(total, probabilities, size=bootstrap).reshape(bootstrap, *table.counts.shape)
        boot_strengths, _ = fit_strengths(replicates)
        low, high = np.percentile(boot_strengths, [2.5, 97.5], axis=0)

    stats = _per_recommender(table.counts)
    ratings_elo = BASE_RATING + ELO_PER_LOGIT * strengths
    low_elo, high_elo = BASE_RATING + ELO_PER_LOGIT * low, BASE_RATING + ELO_PER_LOGIT * high
    voted = stats[:, 0] > 0
    # nobody voted on it: its estimate is just the prior mean, so say "anywhere in the field" rather than a point
    wide_low = min([BASE_RATING - UNRATED_HALF_WIDTH, *low_elo[voted]])
    wide_high = max([BASE_RATING + UNRATED_HALF_WIDTH, *high_elo[voted]])
    ratings = []
    for i, name in enumerate(table.names):
        votes, wins, losses, ties = (int(x) for x in stats[i])
        ratings.append(
            Rating(
                name=name,
                rating=float(ratings_elo[i]),
                ci_low=float(low_elo[i]) if voted[i] else float(wide_low),
                ci_high=float(high_elo[i]) if voted[i] else float(wide_high),
                votes=votes,
                wins=wins,
                losses=losses,
                ties=ties,
                win_rate=(wins + 0.5 * ties) / votes if votes else 0.0,
            )
        )
    ratings.sort(key=lambda r: (r.votes == 0, -r.rating, r.name))
    pairs = {
        pair_key(a, b): table.pair_votes(a, b) for i, a in enumerate(table.names) for b in table.names[i + 1 :]
    }
    return Leaderboard(
        ratings=ratings,
        position_bias=_position_bias(table.counts, home),
        total_votes=total,
        pair_votes=pairs,
        bootstrap=bootstrap,
    )


def fit_strengths(counts: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray]:
    """Batched ridge-penalised Newton–Raphson: counts (B, M, M, 4) -> centred strengths (B, M), home terms (B,),
    both in logits. The penalty makes the problem strictly concave, so the all-zero start always converges."""
    counts = np.asarray(counts, dtype=np.float64)
    batch, m = counts.shape[0], counts.shape[1]
    if m == 0:
        return np.zeros((batch, 0)), np.zeros(batch)
    games = counts.sum(axis=-1)
    scores = counts[..., LEFT] + 0.5 * (counts[..., BOTH] + counts[..., NEITHER])  # the left side's score
    theta = np.zeros((batch, m + 1))  # strengths, then the home advantage
    diagonal = np.arange(m)
    penalty = ridge * np.eye(m + 1)
    for _ in range(_MAX_ITERATIONS):
        s, h = theta[:, :m], theta[:, m]
        logits = s[:, :, None] - s[:, None, :] + h[:, None, None]
        p = 0.5 * (1.0 + np.tanh(0.5 * logits))  # a sigmoid that never overflows
        residual = scores - games * p
        weight = games * p * (1.0 - p)
        gradient = np.empty_like(theta)
        gradient[:, :m] = residual.sum(axis=2) - residual.sum(axis=1)
        gradient[:, m] = residual.sum(axis=(1, 2))
        gradient -= ridge * theta
        rows, cols = weight.sum(axis=2), weight.sum(axis=1)
        information = np.empty((batch, m + 1, m + 1))
        information[:, :m, :m] = -(weight + weight.transpose(0, 2, 1))
        information[:, diagonal, diagonal] += rows + cols
        information[:, :m, m] = rows - cols
        information[:, m, :m] = rows - cols
        information[:, m, m] = weight.sum(axis=(1, 2))
        information += penalty
        step = np.linalg.solve(information, gradient[..., None])[..., 0]
        largest = np.abs(step).max(axis=1)
        step *= np.minimum(1.0, _MAX_STEP / np.maximum(largest, 1e-300))[:, None]
        theta += step
        if largest.max() < _TOLERANCE:
            break
    strengths = theta[:, :m] - theta[:, :m].mean(axis=1, keepdims=True)
    return strengths, theta[:, m].copy()


def _per_recommender(counts: np.ndarray) -> np.ndarray:
    """(votes, wins, losses, ties) per recommender; a recommender against itself counts for none of them."""
    off = counts * (1 - np.eye(counts.shape[0], dtype=np.int64))[:, :, None]
    as_left, as_right = off.sum(axis=1), off.sum(axis=0)  # (M, 4): choices when i was on the left / right
    wins = as_left[:, LEFT] + as_right[:, RIGHT]
    losses = as_left[:, RIGHT] + as_right[:, LEFT]
    ties = as_left[:, BOTH] + as_left[:, NEITHER] + as_right[:, BOTH] + as_right[:, NEITHER]
    return np.stack([wins + losses + ties, wins, losses, ties], axis=1)


def _position_bias(counts: np.ndarray, home: float) -> PositionBias:
    """Left-side share of decisive votes with a Wilson interval (exact enough, and defined for zero votes)."""
    left, right = int(counts[..., LEFT].sum()), int(counts[..., RIGHT].sum())
    rate, low, high = wilson(left, left + right)
    return PositionBias(left_win_rate=rate, ci_low=low, ci_high=high, left_advantage=float(ELO_PER_LOGIT * home))


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float, float]:
    """(rate, low, high); (0.5, 0, 1) with no trials."""
    if trials <= 0:
        return 0.5, 0.0, 1.0
    rate = successes / trials
    denominator = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denominator
    return rate, max(0.0, centre - half), min(1.0, centre + half)
