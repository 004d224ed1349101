"""Analyses of identical photos (same SHA-256) are answered from Redis instead of running the models again."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from storage.cache.availability import degrade_when_redis_down
from storage.cache.keys import DEFAULT_PREFIX, dumps, key, loads

logger = logging.getLogger(__name__)


class AnalysisCache:
    def __init__(self, redis: Redis, ttl_seconds: int, *, prefix: str = DEFAULT_PREFIX) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self._ttl = int(ttl_seconds)
        self._prefix = prefix

    def _key(self, sha256: str) -> str:
        return key(self._prefix, "analysis", sha256)

    @degrade_when_redis_down(None)
    async def get(self, sha256: str) -> dict[str, Any] | None:
        """The cached analysis; None when absent, expired, unreadable (such entries are dropped) or Redis is away."""
        raw = await self._redis.get(self._key(sha256))
        if raw is None:
            return None
        try:
            value = loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            value = None
        if not isinstance(value, dict):
            logger.warning("dropping unreadable cached analysis %s", sha256)
            await self._redis.delete(self._key(sha256))
            return None
        return value

    @degrade_when_redis_down(None)
    async def put(self, sha256: str, analysis: dict[str, Any]) -> None:
        """Store as JSON with the TTL; the value must be JSON-serialisable (TypeError otherwise)."""
        await self._redis.set(self._key(sha256), dumps(analysis), ex=self._ttl)

    @degrade_when_redis_down(None)
    async def forget(self, sha256s: Sequence[str]) -> None:
        """Drop these photos' entries (their sender asked to be forgotten; a later upload recomputes)."""
        if sha256s:
            await self._redis.delete(*(self._key(sha) for sha in sha256s))
