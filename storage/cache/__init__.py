"""Redis-backed helpers: analysis cache, rate limiter, feedback outbox and the shown-analysis registry, plus the
client that rides out a Redis restart (`create_redis`) and what "Redis is away" means (`REDIS_DOWN`).

All store JSON (never pickle) under keys `<prefix>:...`; the prefix (default "artmatch") is a constructor
argument so tests and parallel deployments can share one Redis. They work with clients created with or without
`decode_responses`. The optimisations degrade quietly when Redis is away; the outbox raises.
"""

from storage.cache.analysis import AnalysisCache
from storage.cache.availability import REDIS_DOWN, degrade_when_redis_down
from storage.cache.connection import create_redis
from storage.cache.keys import DEFAULT_PREFIX
from storage.cache.outbox import PERMANENT_ERRORS, FeedbackOutbox
from storage.cache.persistence import RedisPersistence, redis_persistence
from storage.cache.rate_limit import RateDecision, RateLimiter
from storage.cache.shown import ShownAnalysisRegistry

__all__ = [
    "DEFAULT_PREFIX",
    "PERMANENT_ERRORS",
    "REDIS_DOWN",
    "AnalysisCache",
    "FeedbackOutbox",
    "RateDecision",
    "RateLimiter",
    "RedisPersistence",
    "ShownAnalysisRegistry",
    "create_redis",
    "degrade_when_redis_down",
    "redis_persistence",
]
