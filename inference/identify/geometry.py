"""Geometric verification: is there one plane (the painting) seen in the photo under a homography?

Tentative correspondences come from shared visual words (a query keypoint and a work keypoint quantised to the
same word), so only word ids, positions and quantised frames (orientation, scale) of the works' keypoints are
stored, never descriptors. Word matches of a true pair are often only ~10 % inliers; there OpenCV's MAGSAC++
(USAC_MAGSAC, 2 000 iterations) found 6-13 inliers where RANSAC with 10 000 iterations found all 50-100 but
took ~100 ms per candidate. So, as in Lowe's SIFT paper, each correspondence first votes for a rotation and a
scale change (a coarse Hough transform over the keypoints' frames); only those in the best bin and its
neighbours go to RANSAC, which then sees mostly inliers and stops after few iterations. The bins are wide (30
degrees, a factor 2 in scale) because a perspective of 40 degrees bends both across the painting. A fit is
accepted only if it is physically plausible:

- enough inliers (the caller's calibrated threshold decides the final claim; here only a floor);
- the inliers are spread over the work: the convex hull of the inlier points covers a fair part of it, so a small
  repeated motif (a signature, a frame ornament) cannot carry a match;
- the work's corners project to a convex quadrilateral, not mirrored, whose opposite sides and area are within
  what a perspective of up to ~60 degrees produces.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

# A word that occurs more often than this in the work or the photo is a texture word: pairing all its
# occurrences would add mostly wrong correspondences (and quadratic work), so such words are skipped.
MAX_WORD_MULTIPLICITY = 4
# A homography has 8 degrees of freedom; below this many inliers any fit is luck.
MIN_INLIERS = 8
# The inliers' convex hull must cover at least this share of the work's area.
MIN_HULL_COVERAGE = 0.03
# Opposite sides of the projected work may differ by this factor at most (a 60-degree view gives ~2x).
MAX_SIDE_RATIO = 4.0
# The projected work's aspect ratio may differ from the work's by this factor at most.
MAX_ASPECT_CHANGE = 4.0
# RANSAC's reprojection threshold in pixels of the photo's working size (512 px long side by default; the 10 k
# benchmark gave no false claim with it at 512 or 1024).
REPROJECTION_PX = 6.0
RANSAC_ITERATIONS = 2_000
# Hough bins over (rotation, log2 scale change) of a correspondence: 12 x 30 degrees, one octave.
ANGLE_BINS = 12
SCALE_BIN_LOG2 = 1.0


@dataclass(frozen=True)
class Verification:
    """A plausible homography from work to photo coordinates and its inlier count."""

    inliers: int
    homography: npt.NDArray[np.float64]
    corners: npt.NDArray[np.float64]  # 4 x 2, the work's corners in the photo's working coordinates
    hull_coverage: float


def tentative_matches(
    query_words: npt.NDArray[np.integer], work_words: npt.NDArray[np.integer]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Index pairs (query, work) of keypoints sharing a word, skipping words too frequent on either side."""
    if query_words.shape[0] == 0 or work_words.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    qw = np.asarray(query_words, np.int64)
    ww = np.asarray(work_words, np.int64)
    order = np.argsort(ww, kind="stable")
    sorted_w = ww[order]
    lo = np.searchsorted(sorted_w, qw, "left")
    hi = np.searchsorted(sorted_w, qw, "right")
    counts = hi - lo
    q_unique, q_inverse, q_counts = np.unique(qw, return_inverse=True, return_counts=True)
    keep = (counts > 0) & (counts <= MAX_WORD_MULTIPLICITY) & (q_counts[q_inverse] <= MAX_WORD_MULTIPLICITY)
    q_idx = np.nonzero(keep)[0]
    counts = counts[keep]
    if q_idx.shape[0] == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty
    total = int(counts.sum())
    q_rep = np.repeat(q_idx, counts)
    first = np.repeat(lo[keep] - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    w_rep = order[first + np.arange(total)]
    return q_rep.astype(np.int64), w_rep.astype(np.int64)


def _convex(quad: npt.NDArray[np.float64]) -> bool:
    """A simple, convex, counter-clockwise-or-clockwise quadrilateral (all cross products of one sign)."""
    edges = np.roll(quad, -1, axis=0) - quad
    nxt = np.roll(edges, -1, axis=0)
    cross = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


def plausible_quad(corners: npt.NDArray[np.float64], work_size: tuple[float, float]) -> bool:
    """The projected work looks like a painting seen in perspective: convex, not mirrored, sane proportions."""
    if not np.all(np.isfinite(corners)) or not _convex(corners):
        return False
    edges = np.roll(corners, -1, axis=0) - corners
    # Orientation is kept: image corners (0,0),(w,0),(w,h),(0,h) run clockwise on screen; a mirror flips it.
    signed = 0.5 * float(
        np.sum(corners[:, 0] * np.roll(corners[:, 1], -1) - np.roll(corners[:, 0], -1) * corners[:, 1])
    )
    if signed <= 0:
        return False
    lengths = np.linalg.norm(edges, axis=1)
    if np.any(lengths < 1e-6):
        return False
    top, right, bottom, left = lengths
    if max(top, bottom) / min(top, bottom) > MAX_SIDE_RATIO or max(left, right) / min(left, right) > MAX_SIDE_RATIO:
        return False
    w, h = work_size
    aspect = ((top + bottom) / (left + right)) / (w / h)
    return 1.0 / MAX_ASPECT_CHANGE <= aspect <= MAX_ASPECT_CHANGE


def consistent_subset(query_frames: npt.NDArray[np.uint8], work_frames: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Correspondences whose rotation and scale change agree with the most popular (Hough peak +- one bin)."""
    d_angle = (query_frames[:, 0].astype(np.int64) - work_frames[:, 0].astype(np.int64)) % 256
    a_bin = (d_angle * ANGLE_BINS) // 256
    d_scale = (query_frames[:, 1].astype(np.float64) - work_frames[:, 1].astype(np.float64)) / 32.0
    s_bin = np.floor(d_scale / SCALE_BIN_LOG2).astype(np.int64)
    s_bin -= s_bin.min()
    n_s = int(s_bin.max()) + 3
    votes = np.zeros((ANGLE_BINS, n_s), np.int64)
    np.add.at(votes, (a_bin, s_bin + 1), 1)
    # Sum each bin with its neighbours (angle wraps around, scale does not).
    pooled = np.zeros_like(votes)
    for shift_a in (-1, 0, 1):
        for shift_s in (-1, 0, 1):
            pooled += np.roll(np.roll(votes, shift_a, axis=0), shift_s, axis=1)
    pa, ps = np.unravel_index(int(np.argmax(pooled)), pooled.shape)
    da = (a_bin - pa) % ANGLE_BINS
    return ((da <= 1) | (da == ANGLE_BINS - 1)) & (np.abs(s_bin + 1 - ps) <= 1)


def verify(
    query_xy: npt.NDArray[np.float32],
    query_frames: npt.NDArray[np.uint8],
    query_words: npt.NDArray[np.integer],
    work_xy: npt.NDArray[np.floating],
    work_frames: npt.NDArray[np.uint8],
    work_words: npt.NDArray[np.integer],
    work_size: tuple[float, float],
    *,
    seed: int = 0,
    min_inliers: int = MIN_INLIERS,
) -> Verification | None:
    """Fit and check a homography work -> photo from word correspondences; None when nothing plausible, or when
    fewer than `min_inliers` correspondences survive the Hough vote (the inliers can only be fewer, so a caller
    that only wants claims skips RANSAC, the costly part, for hopeless candidates)."""
    need = max(MIN_INLIERS, min_inliers)
    q_idx, w_idx = tentative_matches(query_words, work_words)
    if q_idx.shape[0] < need:
        return None
    keep = consistent_subset(query_frames[q_idx], np.asarray(work_frames)[w_idx])
    q_idx, w_idx = q_idx[keep], w_idx[keep]
    if q_idx.shape[0] < need:
        return None
    src = np.asarray(work_xy, np.float32)[w_idx].reshape(-1, 1, 2)
    dst = np.asarray(query_xy, np.float32)[q_idx].reshape(-1, 1, 2)
    cv2.setRNGSeed(seed)  # RANSAC samples at random; a fixed seed keeps answers reproducible
    try:
        h, mask = cv2.findHomography(
            src, dst, cv2.RANSAC, REPROJECTION_PX, maxIters=RANSAC_ITERATIONS, confidence=0.999
        )
    except cv2.error:
        return None
    if h is None or mask is None:
        return None
    inlier = mask.ravel().astype(bool)
    # One work keypoint or one photo keypoint supports the fit once, however many words paired it.
    inliers = min(np.unique(q_idx[inlier]).shape[0], np.unique(w_idx[inlier]).shape[0])
    if inliers < MIN_INLIERS:
        return None
    w, h_ = work_size
    box = np.array([[0, 0], [w, 0], [w, h_], [0, h_]], np.float64).reshape(-1, 1, 2)
    corners = np.asarray(cv2.perspectiveTransform(box, h), np.float64).reshape(4, 2)
    if not plausible_quad(corners, work_size):
        return None
    hull = cv2.convexHull(src[inlier].reshape(-1, 2))
    coverage = float(cv2.contourArea(hull)) / max(w * h_, 1e-6)
    if coverage < MIN_HULL_COVERAGE:
        return None
    return Verification(int(inliers), np.asarray(h, np.float64), corners, coverage)
