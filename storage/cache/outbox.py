"""A durable Redis queue for votes and likes that could not be written because Postgres was down.

Events are replayed in the order they were pushed. An event leaves the queue only after the handler has
succeeded, so a crash or a still-down database never loses one (delivery is at-least-once; the handlers
are idempotent upserts). One drainer at a time holds a short Redis lock, which keeps replay order intact
even if two processes drain together. An event that can never succeed (malformed, or refused by a
constraint: e.g. its user was deleted meanwhile) is moved to a dead-letter list instead of blocking
everything behind it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from redis.asyncio import Redis

from storage.cache.keys import DEFAULT_PREFIX, dumps, key, loads

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[Any]]

# Retrying cannot help these: the event is dead-lettered. Anything else (connection errors, timeouts) keeps
# the event at the head of the queue and is re-raised, so the next drain tries again.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.IntegrityConstraintViolationError,
    asyncpg.exceptions.DataError,
    ValueError,
    KeyError,
    TypeError,
)

# Remove the head only if it is still the event we handled and we still hold the lock; maybe dead-letter it.
# KEYS: queue, lock, dead.  ARGV: raw event, lock token, lock ttl ms, '1' to dead-letter, dead-letter cap.
_ACK_LUA = """
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if redis.call('LINDEX', KEYS[1], 0) ~= ARGV[1] then return 0 end
redis.call('LPOP', KEYS[1])
if ARGV[4] == '1' then
  redis.call('RPUSH', KEYS[3], ARGV[1])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[5]), -1)
end
return 1
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FeedbackOutbox:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        lock_ms: int = 60_000,
        dead_letter_cap: int = 10_000,
        permanent_errors: tuple[type[BaseException], ...] = PERMANENT_ERRORS,
    ) -> None:
        self._redis = redis
        self._queue = key(prefix, "outbox", "feedback")
        self._dead = key(prefix, "outbox", "feedback", "dead")
        self._lock = key(prefix, "outbox", "feedback", "lock")
        self._lock_ms = lock_ms
        self._dead_cap = dead_letter_cap
        self._permanent = permanent_errors
        self._ack_script = redis.register_script(_ACK_LUA)
        self._release_script = redis.register_script(_RELEASE_LUA)

    async def push(self, event: dict[str, Any]) -> int:
        """Append an event (JSON); returns the queue length. Raises one of `REDIS_DOWN` when Redis is away
        (after the client's retries): the caller must not answer "queued" then."""
        return int(await self._redis.rpush(self._queue, dumps(event)))

    async def size(self) -> int:
        return int(await self._redis.llen(self._queue))

    async def dead_letter_count(self) -> int:
        """Events set aside because they can never be written (see `dead_letters`)."""
        return int(await self._redis.llen(self._dead))

    async def dead_letters(self) -> list[dict[str, Any] | str]:
        """Dead-lettered events, oldest first (raw text where it was not valid JSON), for inspection."""
        result: list[dict[str, Any] | str] = []
        for raw in await self._redis.lrange(self._dead, 0, -1):
            try:
                result.append(loads(raw))
            except (json.JSONDecodeError, UnicodeDecodeError):
                result.append(raw.decode(errors="replace") if isinstance(raw, bytes) else raw)
        return result

    async def requeue_dead_letters(self) -> int:
        """Move dead-lettered events back to the queue (e.g. after fixing a bug); returns how many."""
        moved = 0
        while await self._redis.lmove(self._dead, self._queue, "LEFT", "RIGHT") is not None:
            moved += 1
        return moved

    async def discard(self, matches: Callable[[dict[str, Any]], bool], *, wait_s: float = 10.0) -> int:
        """Remove queued and dead-lettered events that `matches` (e.g. those of a user who asked to be
        forgotten, so a replay cannot bring their data back). Holds the drain lock, so replay order is kept;
        events pushed meanwhile stay queued. Returns how many were removed."""
        token = secrets.token_hex(16)
        deadline = asyncio.get_running_loop().time() + wait_s
        while not await self._redis.set(self._lock, token, nx=True, px=self._lock_ms):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("the outbox is being drained; try again")
            await asyncio.sleep(0.05)
        try:
            removed = 0
            for name in (self._queue, self._dead):
                raws = await self._redis.lrange(name, 0, -1)
                keep = [raw for raw in raws if not _matching(raw, matches)]
                if len(keep) == len(raws):
                    continue
                removed += len(raws) - len(keep)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.ltrim(name, len(raws), -1)  # drop what we read; anything pushed since stays
                    if keep:
                        pipe.lpush(name, *reversed(keep))
                    await pipe.execute()
            return removed
        finally:
            await self._release_script(keys=[self._lock], args=[token])

    async def drain(self, handler: Handler, *, limit: int | None = None) -> int:
        """Hand queued events to `handler` oldest first; returns how many it accepted.

        Stops at the first transient failure: that event stays first in the queue and the exception
        propagates.
        Returns 0 at once if another process is draining.
        """
        token = secrets.token_hex(16)
        if not await self._redis.set(self._lock, token, nx=True, px=self._lock_ms):
            return 0
        delivered = 0
        try:
            while limit is None or delivered < limit:
                raw = await self._redis.lindex(self._queue, 0)
                if raw is None:
                    break
                event = _decode_event(raw)
                if event is None:
                    logger.error("outbox: malformed event dead-lettered")
                    if await self._ack(raw, token, dead=True) < 0:
                        break
                    continue
                try:
                    await handler(event)
                except self._permanent as exc:
                    logger.error("outbox: %s event dead-lettered (%s: %s)", event.get("kind"), type(exc).__name__, exc)
                    if await self._ack(raw, token, dead=True) < 0:
                        break
                    continue
                except BaseException:
                    if delivered:
                        logger.info("outbox: %d events delivered before a failure", delivered)
                    raise
                acked = await self._ack(raw, token, dead=False)
                if acked < 0:
                    logger.warning("outbox: drain lock lost; stopping (the event may be delivered again)")
                    break
                delivered += acked
        finally:
            await self._release_script(keys=[self._lock], args=[token])
        return delivered

    async def _ack(self, raw: bytes | str, token: str, *, dead: bool) -> int:
        """1 removed, 0 head changed under us (nothing removed), -1 lock lost."""
        result = await self._ack_script(
            keys=[self._queue, self._lock, self._dead],
            args=[raw, token, self._lock_ms, "1" if dead else "0", self._dead_cap],
        )
        return int(result)


def _matching(raw: bytes | str, matches: Callable[[dict[str, Any]], bool]) -> bool:
    event = _decode_event(raw)
    return event is not None and bool(matches(event))


def _decode_event(raw: bytes | str) -> dict[str, Any] | None:
    try:
        event = loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return event if isinstance(event, dict) else None
