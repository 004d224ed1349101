"""Procedural paintings and simulated phone photos of paintings.

Used by the tests and the benchmark, and usable at gallery build to calibrate the threshold when no real photos
of works outside the gallery are at hand (photograph procedural paintings that are not in the gallery). The
photo model follows issue 8: a perspective of up to 40 degrees, in-plane rotation, the work filling 20-100 % of
the frame, up to 30 % of it cut off by the frame edge or hidden by an occluder (a visitor's head), a picture
frame on a wall, glare, blur, sensor noise, a colour cast and JPEG compression at quality 60.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]


def _colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(0, 256, 3))  # type: ignore[return-value]


def painting(rng: np.random.Generator, long_side: int = 512) -> Image:
    """A random 'painting': a colour gradient, blobs, polygons and brush strokes over a painted texture."""
    aspect = float(rng.uniform(0.6, 1.6))
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    t = (xx * math.cos(angle) + yy * math.sin(angle)) / (w + h) + 0.5
    canvas = (c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]).astype(np.uint8)
    for _ in range(int(rng.integers(25, 60))):
        kind = int(rng.integers(0, 4))
        colour = _colour(rng)
        if kind == 0:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            axes = (int(rng.integers(4, max(5, w // 5))), int(rng.integers(4, max(5, h // 5))))
            cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            points = rng.integers(0, [w, h], size=(int(rng.integers(3, 7)), 2)).astype(np.int32)
            cv2.fillPoly(canvas, [points], colour, cv2.LINE_AA)
        elif kind == 2:
            steps = rng.normal(0, w / 12, size=(int(rng.integers(3, 9)), 2))
            stroke = np.cumsum(steps, axis=0) + rng.uniform([0, 0], [w, h])
            cv2.polylines(canvas, [stroke.astype(np.int32)], False, colour, int(rng.integers(1, 9)), cv2.LINE_AA)
        else:
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.rectangle(
                canvas, (x, y), (x + int(rng.integers(5, w // 4)), y + int(rng.integers(5, h // 4))), colour, -1
            )
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), float(rng.uniform(0.8, 2.0)))
    strength = float(rng.uniform(8, 25))
    out = canvas.astype(np.float32) + strength * grain[..., None] / max(float(grain.std()), 1e-6)
    return np.clip(out, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Photo:
    """A simulated photo (RGB uint8, and the JPEG it was decoded from) and where the work's corners are in it
    (top-left, top-right, bottom-right, bottom-left; pixels)."""

    image: Image
    corners: npt.NDArray[np.float64]
    jpeg: bytes


def _wall(rng: np.random.Generator, w: int, h: int) -> Image:
    base = rng.uniform(60, 230, 3)
    yy = np.linspace(-0.5, 0.5, h, dtype=np.float32)[:, None, None]
    wall = base[None, None, :] * (1 + 0.3 * yy * rng.uniform(-1, 1))
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 3.0)[..., None] * 6
    return np.clip(np.broadcast_to(wall, (h, w, 3)) + noise, 0, 255).astype(np.uint8)


def _framed(rng: np.random.Generator, work: Image) -> tuple[Image, int]:
    h, w = work.shape[:2]
    border = max(2, int(round(max(h, w) * rng.uniform(0.03, 0.10))))
    colour = np.array(rng.uniform(20, 220, 3), np.float32)
    frame = np.empty((h + 2 * border, w + 2 * border, 3), np.float32)
    frame[:] = colour
    ramp = np.linspace(0.7, 1.2, border, dtype=np.float32)
    for i, f in enumerate(ramp):  # a bevelled moulding: lighter towards the inner edge
        frame[i : frame.shape[0] - i, i : frame.shape[1] - i] = colour * f
    frame[border : border + h, border : border + w] = work
    return np.clip(frame, 0, 255).astype(np.uint8), border


def photograph(
    rng: np.random.Generator,
    work: Image,
    *,
    photo_side: int = 1024,
    max_tilt_deg: float = 40.0,
    fill: tuple[float, float] = (0.2, 1.0),
    max_cut: float = 0.3,
    jpeg_quality: int = 60,
) -> Photo:
    """A phone photo of `work` hanging framed on a wall; see the module docstring for what is simulated."""
    landscape = bool(rng.random() < 0.5)
    pw, ph = (photo_side, photo_side * 3 // 4) if landscape else (photo_side * 3 // 4, photo_side)
    framed, border = _framed(rng, work)
    fh, fw = framed.shape[:2]
    # Perspective: rotate the plane about a random axis in it by up to max_tilt, then in-plane rotation.
    tilt = math.radians(float(rng.uniform(0, max_tilt_deg)))
    axis = float(rng.uniform(0, 2 * math.pi))
    roll = math.radians(float(rng.uniform(-20, 20)))
    ax, ay = math.cos(axis), math.sin(axis)
    k = np.array([[0, 0, ay], [0, 0, -ax], [-ay, ax, 0]])
    rot = np.eye(3) + math.sin(tilt) * k + (1 - math.cos(tilt)) * (k @ k)
    cr, sr = math.cos(roll), math.sin(roll)
    rot = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]) @ rot
    focal = 1.2 * max(fw, fh)
    local = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float64) - [fw / 2, fh / 2]
    pts3 = np.c_[local, np.zeros(4)] @ rot.T + [0, 0, focal * 1.6]
    proj = focal * pts3[:, :2] / pts3[:, 2:3]
    # Scale so the framed work covers `fill` of the photo's area, then place it, possibly partly outside.
    area = 0.5 * abs(float(np.sum(proj[:, 0] * np.roll(proj[:, 1], -1) - np.roll(proj[:, 0], -1) * proj[:, 1])))
    target = float(rng.uniform(*fill)) * pw * ph
    proj *= math.sqrt(target / max(area, 1e-6))
    span = proj.max(axis=0) - proj.min(axis=0)
    if span[0] > pw or span[1] > ph:  # too big for the frame at this tilt: shrink to fit
        proj *= 0.98 * min(pw / span[0], ph / span[1])
        span = proj.max(axis=0) - proj.min(axis=0)
    cut = float(rng.uniform(0, max_cut))
    centre = np.array([pw / 2, ph / 2]) + rng.uniform(-1, 1, 2) * (np.array([pw, ph]) - span) / 2
    direction = rng.normal(size=2)
    centre += direction / np.linalg.norm(direction) * span * cut * 0.5
    dst = (proj - proj.mean(axis=0) + centre).astype(np.float32)
    src = np.array([[0, 0], [fw, 0], [fw, fh], [0, fh]], np.float32)
    h = cv2.getPerspectiveTransform(src, dst)
    wall = _wall(rng, pw, ph)
    warped = cv2.warpPerspective(framed, h, (pw, ph), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((fh, fw), 255, np.uint8), h, (pw, ph)) > 127
    photo = np.where(mask[..., None], warped, wall).astype(np.float32)
    # An occluder (a visitor's head and shoulders) over part of the work, if the cut left room for one.
    if rng.random() < 0.6 and cut < 0.25:
        share = float(rng.uniform(0.05, 0.3 - cut))
        r = math.sqrt(share * target / math.pi) * 0.8
        cx, cy = dst[:, 0].mean() + rng.uniform(-0.3, 0.3) * span[0], dst[:, 1].max() - rng.uniform(0, 0.3) * span[1]
        cv2.ellipse(photo, (int(cx), int(cy)), (int(r), int(r * 1.2)), 0, 0, 360, _colour(rng), -1)
    # Glare: a bright soft spot.
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    gx, gy = rng.uniform(0, pw), rng.uniform(0, ph)
    sigma = rng.uniform(0.05, 0.2) * max(pw, ph)
    photo += float(rng.uniform(30, 120)) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * sigma**2))[..., None]
    # Colour cast and exposure.
    photo *= rng.uniform(0.85, 1.15, 3)[None, None, :] * float(rng.uniform(0.8, 1.1))
    photo = np.asarray(cv2.GaussianBlur(photo, (0, 0), float(rng.uniform(0.3, 1.5))), np.float32)
    photo += rng.normal(0, float(rng.uniform(2, 8)), photo.shape).astype(np.float32)
    rgb = np.clip(photo, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    decoded = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), np.uint8)[..., ::-1]
    inner = np.array([[border, border], [fw - border, border], [fw - border, fh - border], [border, fh - border]])
    corners = np.asarray(cv2.perspectiveTransform(inner.reshape(-1, 1, 2).astype(np.float64), h), np.float64)
    corners = corners.reshape(4, 2)
    return Photo(np.ascontiguousarray(decoded), corners, buf.tobytes())


def outside_photos(count: int, seed: int = 2_000_000, long_side: int = 512) -> Iterator[Image]:
    """Phone photos of `count` fresh procedural paintings: photos of works that are not in any gallery, for
    calibrating the identification threshold at build when no real outside photos are at hand. The seed is far
    from the ones tests and benchmarks use for gallery works."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        yield photograph(rng, painting(rng, long_side)).image
