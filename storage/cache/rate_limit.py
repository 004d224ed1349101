"""Per-user rate limit (fixed window) so one user cannot keep the GPU busy for everyone."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from storage.cache import keys
from storage.cache.availability import degrade_when_redis_down


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed


class RateLimiter:
    def __init__(
        self, redis: Redis, limit: int, window_seconds: int, *, prefix: str = keys.DEFAULT_PREFIX
    ) -> None:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be at least 1")
        self._redis = redis
        self._limit = limit
        self._window = int(window_seconds)
        self._prefix = prefix

    @degrade_when_redis_down(RateDecision(allowed=True, retry_after=0))
    async def hit(self, user_id: int, key: str = "photo") -> RateDecision:
        """Count one action; allowed while at most `limit` actions fall in the current window.

        INCR, EXPIRE NX and TTL run in one MULTI, so the window starts at the first hit and the expiry is set
        even if a previous client died between commands. Redis's clock decides, not ours. While Redis is away
        everything is allowed: a limit that cannot count must not lock everyone out.
        """
        counter = keys.key(self._prefix, "rate", key, user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(counter)
            pipe.expire(counter, self._window, nx=True)
            pipe.ttl(counter)
            count, _, ttl = await pipe.execute()
        if int(count) <= self._limit:
            return RateDecision(allowed=True, retry_after=0)
        return RateDecision(allowed=False, retry_after=int(ttl) if int(ttl) > 0 else self._window)
