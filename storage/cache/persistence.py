"""Whether Redis keeps every write across a crash: the feedback outbox is only as durable as Redis.

Votes queued while Postgres is down live only in Redis until they are replayed. Without the AOF fsynced on every
write (`appendonly yes`, `appendfsync always`, as docker-compose.yml runs it), a Redis crash loses them, so the
bot checks at start and warns.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

ADVICE = "run it with --appendonly yes --appendfsync always"


@dataclass(frozen=True)
class RedisPersistence:
    durable: bool | None  # None: unknown (CONFIG is disabled, renamed or not permitted, as on some managed Redis)
    appendonly: str | None
    appendfsync: str | None
    message: str


async def redis_persistence(redis: Redis) -> RedisPersistence:
    """Ask the server (CONFIG GET) whether it persists every write, with a sentence for the start-up log.

    Connection errors propagate (see `storage.cache.availability.REDIS_DOWN`): the caller decides whether a
    Redis that is away at start is fatal.
    """
    try:
        config = await redis.config_get("append*")
    except ResponseError:
        return RedisPersistence(
            None,
            None,
            None,
            "Cannot tell whether Redis persists every write (CONFIG GET is not allowed): votes queued while "
            f"Postgres is down are lost if Redis crashes without it; {ADVICE}",
        )
    values = {_text(k): _text(v) for k, v in config.items()}
    appendonly, appendfsync = values.get("appendonly"), values.get("appendfsync")
    if appendonly == "yes" and appendfsync == "always":
        return RedisPersistence(
            True, appendonly, appendfsync, "Redis persists every write (appendonly=yes, appendfsync=always)"
        )
    setting = f"appendonly={appendonly}" if appendonly != "yes" else f"appendfsync={appendfsync}"
    return RedisPersistence(
        False,
        appendonly,
        appendfsync,
        f"Redis does not persist every write ({setting}): votes queued while Postgres is down would be lost "
        f"if Redis crashes; {ADVICE}",
    )


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
