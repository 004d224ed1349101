"""Which analysis (or suggestion) was shown to whom, in Redis, so button ownership can be checked while Postgres
restarts. One registry per kind of thing shown: `namespace` keeps analysis and suggestion ids apart."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from redis.asyncio import Redis

from storage.cache.availability import degrade_when_redis_down
from storage.cache.keys import DEFAULT_PREFIX, dumps, key, loads

K = TypeVar("K", bound=str)  # a side name: any str, or a Literal of them


class ShownAnalysisRegistry:
    def __init__(
        self, redis: Redis, ttl_seconds: int, *, prefix: str = DEFAULT_PREFIX, namespace: str = "shown"
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        self._redis = redis
        self._ttl = int(ttl_seconds)
        self._prefix = prefix
        self._namespace = namespace

    def _key(self, analysis_id: int) -> str:
        return key(self._prefix, self._namespace, int(analysis_id))

    @degrade_when_redis_down(None)
    async def remember(
        self,
        analysis_id: int,
        user_id: int,
        sets: Mapping[K, Sequence[int]],
        mode: str = "sides",
        display_ids: Sequence[int] | None = None,
    ) -> None:
        """Record the owner and the works per side, e.g. {'left': [3, 1], 'right': [7, 9]}, for the TTL."""
        record = {
            "analysis_id": int(analysis_id),
            "user_id": int(user_id),
            "sets": {side: [int(i) for i in ids] for side, ids in sets.items()},
            "mode": mode,
        }
        if display_ids is not None:
            record["display_ids"] = [int(i) for i in display_ids]
        await self._redis.set(self._key(analysis_id), dumps(record), ex=self._ttl)

    @degrade_when_redis_down(None)
    async def get(self, analysis_id: int) -> dict[str, Any] | None:
        """{'analysis_id', 'user_id', 'sets': {side: [ids]}} or None (unknown, expired, unreadable or Redis is
        away: the caller then asks Postgres)."""
        raw = await self._redis.get(self._key(analysis_id))
        if raw is None:
            return None
        try:
            record = loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if (
            not isinstance(record, dict)
            or "user_id" not in record
            or not isinstance(record.get("sets"), dict)
        ):
            return None
        return record

    @degrade_when_redis_down(None)
    async def forget(self, ids: Sequence[int]) -> None:
        """Drop records (a user asked to be forgotten: their old buttons must stop working at once)."""
        if ids:
            await self._redis.delete(*(self._key(i) for i in ids))
