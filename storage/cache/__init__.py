"""Redis-backed helpers: analysis cache, rate limiter, feedback outbox and the shown-analysis registry.

All store JSON (never pickle) under keys `<prefix>:...`; the prefix (default "artmatch") is a constructor
argument so tests and parallel deployments can share one Redis. They work with clients created with or without
`decode_responses`.
"""

from storage.cache.analysis import AnalysisCache
from storage.cache.keys import DEFAULT_PREFIX
from storage.cache.outbox import PERMANENT_ERRORS, FeedbackOutbox
from storage.cache.rate_limit import RateDecision, RateLimiter
from storage.cache.shown import ShownAnalysisRegistry

__all__ = [
    "DEFAULT_PREFIX",
    "PERMANENT_ERRORS",
    "AnalysisCache",
    "FeedbackOutbox",
    "RateDecision",
    "RateLimiter",
    "ShownAnalysisRegistry",
]
