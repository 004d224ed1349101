"""Local features: RootSIFT keypoints of an image at a fixed working size.

Why RootSIFT: it needs no learned weights, is invariant to scale and rotation and robust to the perspective,
blur and colour changes of a phone photo; comparing square-rooted L1-normalised SIFT with L2 equals the Hellinger
kernel on the original histograms, which matches better than plain SIFT (Arandjelović & Zisserman, 2012).

Gallery works and query photos are resized so their longest side is a fixed number of pixels *before* detection,
so the keypoint scales of the build and of a query come from the same pyramid; keypoints are returned in the
coordinates of that resized image plus the factor back to the caller's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

DESCRIPTOR_DIM = 128
# Below this longest side a photo holds too little detail to identify anything; we answer "no match".
MIN_SIDE = 32


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image: `xy` (N x 2, float32) in the resized image, their `frames` (N x 2 uint8: SIFT
    orientation in 1/256 turns, log2 of the keypoint size in 1/32 steps; see `quantise_frames`), RootSIFT
    `descriptors` (N x 128, float32), the resized `size` (width, height) and `scale`, the factor from resized
    to original pixels."""

    xy: npt.NDArray[np.float32]
    frames: npt.NDArray[np.uint8]
    descriptors: npt.NDArray[np.float32]
    size: tuple[int, int]
    scale: float

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def empty_features(size: tuple[int, int] = (0, 0), scale: float = 1.0) -> LocalFeatures:
    return LocalFeatures(
        np.zeros((0, 2), np.float32), np.zeros((0, 2), np.uint8), np.zeros((0, DESCRIPTOR_DIM), np.float32), size, scale
    )


def quantise_frames(angle_deg: npt.NDArray[np.float32], size: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Orientation and scale in one byte each: what the geometric check needs to vote for a rotation and a
    scale change per correspondence (1.4 degrees and 2 % steps are far finer than its bins)."""
    angle = np.round(np.mod(angle_deg, 360.0) * (256 / 360.0)).astype(np.int64) % 256
    log_size = np.clip(np.round(np.log2(np.maximum(size, 1.0)) * 32.0), 0, 255).astype(np.int64)
    return np.stack([angle, log_size], axis=1).astype(np.uint8)


def to_gray(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Grey levels of an RGB (H x W x 3), RGBA or grey (H x W) uint8 array."""
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY), np.uint8)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.asarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGBA2GRAY), np.uint8)
    raise ValueError(f"not an image array of shape {image.shape}")


def root_sift(descriptors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """SIFT -> RootSIFT: L1-normalise, then square root (rows stay unit L2 length)."""
    d = np.asarray(descriptors, np.float32)
    d = d / np.maximum(d.sum(axis=1, keepdims=True), 1e-7)
    return np.sqrt(d).astype(np.float32)


class FeatureExtractor:
    """RootSIFT at a fixed longest side, keeping the `max_keypoints` strongest responses.

    One instance per thread: OpenCV's SIFT object is not documented as thread-safe.
    """

    def __init__(self, max_side: int, max_keypoints: int) -> None:
        self.max_side = max_side
        self.max_keypoints = max_keypoints
        # The contrast threshold is lowered from 0.04 so flat-ish paintings still give enough keypoints; the cap
        # then keeps the strongest.
        self._sift = cv2.SIFT.create(contrastThreshold=0.02)

    def __call__(self, image: npt.NDArray[np.uint8]) -> LocalFeatures:
        """Features of an image; an image too small to hold any gives none (a ValueError only for arrays that
        are not images at all)."""
        if image.ndim < 2 or max(image.shape[:2]) < MIN_SIDE or min(image.shape[:2]) < 8:
            return empty_features((int(image.shape[1]) if image.ndim > 1 else 0, int(image.shape[0])))
        if image.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {image.dtype}")
        gray = to_gray(image)
        h, w = gray.shape
        scale = self.max_side / max(h, w)
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            gray = np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), np.uint8)
        else:  # never enlarge: upsampling invents no detail, it only shifts the scales
            scale = 1.0
            size = (w, h)
        keypoints, descriptors = self._sift.detectAndCompute(gray, None)
        if descriptors is None or len(keypoints) == 0:
            return empty_features(size, 1.0 / scale)
        response = np.array([k.response for k in keypoints], np.float32)
        keep = np.argsort(-response, kind="stable")[: self.max_keypoints]
        xy = np.array([keypoints[i].pt for i in keep], np.float32).reshape(-1, 2)
        angle = np.array([keypoints[i].angle for i in keep], np.float32)
        kp_size = np.array([keypoints[i].size for i in keep], np.float32)
        return LocalFeatures(
            xy, quantise_frames(angle, kp_size), root_sift(np.asarray(descriptors[keep], np.float32)), size, 1.0 / scale
        )
