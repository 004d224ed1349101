"""The decision threshold: when is a verified homography a claim "this is the work"?

A wrong "this is" is much worse than no claim, so the threshold is set on photos of works that are *not* in the
gallery (negatives). For each negative photo the identifier reports the inlier count of its best plausible
candidate (0 when none survives verification); that is the score a false identification would have. Those
null scores have a light, roughly exponential tail (chance agreements of word matches under a random
homography), so the tail is fitted as P(S >= s) = exp(-(s - mean) / scale) with `scale` the standard deviation
(at least 1), and the threshold is the smallest inlier count where that tail is at most the target rate
(1 % by default), and never below the largest null score seen plus one or a fixed floor. With a few hundred
calibration photos the empirical 99th percentile alone would rest on two or three photos; the fitted tail
extrapolates, and the "max + 1" rule makes sure no calibration negative would have been claimed.

`confidence` of a claim is 1 - P(S >= inliers) under that fitted null: the estimated chance that a photo of a
work outside the gallery scores lower. It is at least 1 - target at the threshold and tends to 1 above it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# Even with a perfectly quiet calibration set, fewer inliers than this are not a claim.
FLOOR_INLIERS = 15


@dataclass(frozen=True)
class Threshold:
    """The calibrated decision: claim when `inliers >= min_inliers`."""

    min_inliers: int
    null_mean: float
    null_scale: float
    negatives: int  # calibration photos behind it; 0 = uncalibrated default
    target_false_rate: float

    @classmethod
    def default(cls, target_false_rate: float = 0.01) -> Threshold:
        """Before calibration: the floor, with a null tail that makes the floor ~1 % (a guess, flagged by 0)."""
        scale = 2.0
        return cls(FLOOR_INLIERS, FLOOR_INLIERS - scale * math.log(1 / target_false_rate), scale, 0, target_false_rate)

    @classmethod
    def calibrate(cls, null_scores: Sequence[int], target_false_rate: float = 0.01) -> Threshold:
        """Fit the null tail on negatives' best inlier counts and pick the smallest safe threshold."""
        if not null_scores:
            return cls.default(target_false_rate)
        n = len(null_scores)
        mean = sum(null_scores) / n
        scale = max(1.0, math.sqrt(sum((s - mean) ** 2 for s in null_scores) / n))
        from_tail = math.ceil(mean + scale * math.log(1.0 / target_false_rate))
        threshold = max(FLOOR_INLIERS, from_tail, max(null_scores) + 1)
        return cls(int(threshold), float(mean), float(scale), n, float(target_false_rate))

    def false_rate(self, inliers: int) -> float:
        """Estimated P(a negative photo scores >= inliers)."""
        return min(1.0, math.exp(-(inliers - self.null_mean) / self.null_scale))

    def confidence(self, inliers: int) -> float:
        return 1.0 - self.false_rate(inliers)

    def accepts(self, inliers: int) -> bool:
        return inliers >= self.min_inliers

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Threshold:
        return cls(
            int(data["min_inliers"]),
            float(data["null_mean"]),
            float(data["null_scale"]),
            int(data["negatives"]),
            float(data["target_false_rate"]),
        )
