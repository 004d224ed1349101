"""Redis key naming and value decoding shared by the cache classes."""

from __future__ import annotations

import json
from typing import Any

DEFAULT_PREFIX = "artmatch"


def key(prefix: str, *parts: object) -> str:
    """`prefix:part:part`; the prefix lets tests (or two deployments) share one Redis without collisions."""
    return ":".join([prefix, *(str(p) for p in parts)])


def dumps(value: Any) -> str:
    """JSON only, never pickle: a value read back from Redis must not be able to run code."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def loads(raw: bytes | str) -> Any:
    return json.loads(raw)
