"""How the service's CPU threads are split between CLIP, the describer and identification.

Each model has its own worker thread (`inference.pipeline`), but a torch or OpenVINO call on that thread fans
out to as many threads as the machine has cores. With CLIP, the describer and identification each doing that at
once, the cores are oversubscribed, and a concurrent /v1/analyze made the visual set 1.48x slower (issue 10).
So each gets its own share: CLIP half the cores (the fast path a user waits for), the describer the rest,
identification's OpenCV one thread (it runs next to CLIP). torch's thread count is per calling thread (OpenMP's
`nthreads-var` is a per-thread setting), so each pool's initializer sets its own; OpenVINO takes its count when
the model is compiled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inference.settings import InferenceSettings

CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")
MAX_CLIP_THREADS = 8
"""A batch-1 ViT-B/32 pass stops getting faster around here; more cores are better left to the describer."""


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, capped by a container's CPU quota (`docker --cpus`), which
    the affinity does not show."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, quota) if quota is not None else cores)


def _cgroup_quota() -> int | None:
    try:
        limit, period = CGROUP_V2_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    try:
        return max(1, math.ceil(int(limit) / int(period)))
    except (ValueError, ZeroDivisionError):
        return None


@dataclass(frozen=True)
class ThreadPlan:
    """Threads per model worker of one service process."""

    cores: int
    clip: int
    describer: int
    identify: int

    @classmethod
    def split(
        cls,
        clip: int | None = None,
        describer: int | None = None,
        identify: int = 1,
        cores: int | None = None,
    ) -> ThreadPlan:
        """The settings' counts where given; otherwise CLIP half the cores and the describer the rest."""
        cores = cores or available_cores()
        clip_threads = clip or max(1, min(cores // 2, MAX_CLIP_THREADS))
        describer_threads = describer or max(1, cores - clip_threads)
        return cls(cores, clip_threads, describer_threads, identify)


def thread_plan(settings: InferenceSettings) -> ThreadPlan:
    """The service's split, from INFERENCE_CLIP_THREADS, INFERENCE_DESCRIBER_THREADS and INFERENCE_IDENTIFY_THREADS."""
    return ThreadPlan.split(settings.clip_threads, settings.describer_threads, settings.identify_threads)


def torch_threads(count: int) -> Callable[[], None]:
    """A thread-pool initializer: torch work on this pool's thread uses `count` threads (other threads keep theirs)."""

    def initialize() -> None:
        import torch

        torch.set_num_threads(count)

    return initialize
