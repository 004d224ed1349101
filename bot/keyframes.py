"""One still out of a video, a video note or a GIF: the sharpest of a few evenly spaced frames, as a JPEG.

People film a painting (or forward a GIF of one) as often as they photograph it; the photo flow takes one image,
so we pick the frame least spoilt by motion blur and hand it on. Sharpness is the variance of the Laplacian of a
small grey copy (a blurred frame has weak edges, so a low variance). Decoding is plain PyAV and numpy, run in a
worker thread (`KeyFrames.extract`); nothing here imports an ML stack, so the bot process stays light.

A file comes from a stranger, so everything is capped: the picture size is checked before any frame is decoded,
at most `max_decoded_frames` frames are decoded in all, only the first `max_duration_s` seconds are sampled (a
container may claim any duration), a wall-clock budget stops the search early, and at most `concurrency` files
are decoded at a time. Whatever the decoders raise on a broken file becomes `UnreadableVideo`.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from av.video.frame import VideoFrame

logger = logging.getLogger(__name__)

SCORE_SIDE = 384  # sharpness is measured on a grey copy at most this big: cheap, and comparable across frames
JPEG_QUALITY = 92
# How far past its seek point a frame may be decoded (a seek lands on the keyframe before the wanted time).
FRAMES_PER_SEEK = 48
# Animated-image codecs store frames as changes to the previous one: they are only decoded in order.
UNSEEKABLE_CODECS = frozenset({"gif", "apng", "webp"})


class UnreadableVideo(Exception):
    """No frame could be taken: broken or empty file, no video stream, or over the size caps."""


@dataclass(frozen=True)
class FrameLimits:
    samples: int = 6
    max_pixels: int = 4096 * 4096
    max_duration_s: float = 3600.0
    max_decoded_frames: int = 400
    budget_s: float = 8.0
    max_side: int = 2048  # the still sent on is scaled down to this (the service resizes anyway)


def sharpness(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of a 2-D grey image."""
    g = grey.astype(np.float32)
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def frame_sharpness(frame: VideoFrame) -> float:
    scale = min(1.0, SCORE_SIDE / max(frame.width, frame.height))
    width, height = max(3, round(frame.width * scale)), max(3, round(frame.height * scale))
    return sharpness(frame.reformat(width=width, height=height, format="gray").to_ndarray())


def sharpest_frame_jpeg(data: bytes, limits: FrameLimits = FrameLimits()) -> bytes:
    """The sharpest of `limits.samples` evenly spaced frames of the video in `data`, encoded as a JPEG."""
    try:
        return _sharpest_jpeg(data, limits)
    except UnreadableVideo:
        raise
    except Exception as exc:  # decoders raise a zoo of types (FFmpegError, ValueError, OSError, …) on bad input
        raise UnreadableVideo(f"{type(exc).__name__}: {exc}") from exc


def _sharpest_jpeg(data: bytes, limits: FrameLimits) -> bytes:
    search = _Search(limits)
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = _video_stream(container, limits)
        duration = _duration_s(container, stream)
        if duration is None or duration <= 0:  # unknown length: look at every frame up to the caps
            _in_order(container.decode(stream), None, search)
            return search.jpeg()
        duration = min(duration, limits.max_duration_s)
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        if stream.codec_context.name in UNSEEKABLE_CODECS or duration * rate <= limits.max_decoded_frames:
            # Short, or frames that are deltas of the previous one (a seek would land mid-picture): in order,
            # sampling only as far as the decoding budget reaches.
            reachable = min(duration, limits.max_decoded_frames / rate)
            _in_order(container.decode(stream), _targets(reachable, limits.samples), search)
            return search.jpeg()
        if _by_seeking(container, stream, _targets(duration, limits.samples), search):
            return search.jpeg()
    # Seeking failed (or one keyframe served every target): decode from the start instead.
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = _video_stream(container, limits)
        reachable = min(duration, limits.max_decoded_frames / rate)
        _in_order(container.decode(stream), _targets(reachable, limits.samples), search)
        return search.jpeg()


def _targets(duration: float, samples: int) -> list[float]:
    """`samples` evenly spaced times, each in the middle of its share of the clip."""
    return [duration * (i + 0.5) / samples for i in range(samples)]


def _video_stream(container: Any, limits: FrameLimits) -> Any:
    if not container.streams.video:
        raise UnreadableVideo("no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > limits.max_pixels:
        raise UnreadableVideo(f"{width}x{height} is over the pixel cap")
    return stream


@dataclass
class _Search:
    """The best frame so far, and what was spent finding it."""

    limits: FrameLimits
    deadline: float = field(init=False)
    decoded: int = 0
    scored: int = 0
    best: VideoFrame | None = None
    best_score: float = -math.inf

    def __post_init__(self) -> None:
        self.deadline = time.monotonic() + self.limits.budget_s

    @property
    def spent(self) -> bool:
        return self.decoded >= self.limits.max_decoded_frames or time.monotonic() > self.deadline

    def count(self, frame: VideoFrame) -> None:
        self.decoded += 1
        if frame.width * frame.height > self.limits.max_pixels:  # a stream may change size mid-way
            raise UnreadableVideo("a frame is over the pixel cap")

    def offer(self, frame: VideoFrame) -> None:
        score = frame_sharpness(frame)
        self.scored += 1
        if score > self.best_score:
            self.best, self.best_score = frame, score

    def jpeg(self) -> bytes:
        if self.best is None:
            raise UnreadableVideo("no frame decoded")
        image = self.best.to_image().convert("RGB")
        image.thumbnail((self.limits.max_side, self.limits.max_side))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=JPEG_QUALITY)
        return out.getvalue()


def _duration_s(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return None


def _in_order(frames: Iterator[VideoFrame], targets: list[float] | None, search: _Search) -> None:
    """Decode from the start; score the first frame at or after each target time (every frame if None)."""
    pending = list(targets) if targets is not None else None
    for frame in frames:
        search.count(frame)
        if pending is None:
            search.offer(frame)
        else:
            at = frame.time or 0.0
            if pending and at >= pending[0] or search.scored == 0:
                search.offer(frame)
            while pending and at >= pending[0]:
                pending.pop(0)
            if not pending:
                return
        if search.spent:
            return


def _by_seeking(container: Any, stream: Any, targets: list[float], search: _Search) -> bool:
    """Seek to each target and score the first frame at or after it. False when the container cannot seek, or
    the seeks found fewer distinct frames than asked (a short clip with one keyframe): decode in order then."""
    seen: set[int | None] = set()
    for target in targets:
        try:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        except av.FFmpegError:
            return False
        for steps, frame in enumerate(container.decode(stream)):
            search.count(frame)
            if (frame.time or 0.0) >= target or steps >= FRAMES_PER_SEEK or search.spent:
                if frame.pts not in seen:
                    seen.add(frame.pts)
                    search.offer(frame)
                break
        if search.spent:
            return True
    return len(seen) >= min(len(targets), 2)


@dataclass
class KeyFrames:
    """The bot's key-frame taker: `limits`, and a bound on files decoded at once (each takes a worker thread)."""

    limits: FrameLimits = field(default_factory=FrameLimits)
    concurrency: int = 2
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def extract(self, data: bytes) -> bytes:
        """The sharpest frame as a JPEG; raises UnreadableVideo."""
        async with self._slots:
            started = time.perf_counter()
            jpeg = await asyncio.to_thread(sharpest_frame_jpeg, data, self.limits)
            logger.info("key frame taken from %d bytes in %.0f ms", len(data), (time.perf_counter() - started) * 1000)
            return jpeg
