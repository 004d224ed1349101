"""The bot's Prometheus metrics and the small HTTP server that exposes them (`GET /metrics` on BOT_METRICS_PORT),
with the container's health check beside them (`GET /healthz`).

Counters are defined once, at import, in the process's default registry: votes and likes in `feedback.metrics`
(counted where they are recorded), Telegram's 429s here (counted by the send layer). The outbox length and its
dead letters live in Redis, so they are read when Prometheus scrapes, not polled.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

import feedback.metrics  # noqa: F401  (registers the vote and like counters in this process's registry)
from storage.cache import REDIS_DOWN, FeedbackOutbox

logger = logging.getLogger(__name__)

TELEGRAM_429 = Counter(
    "artmatch_bot_telegram_429",
    "Telegram flood waits (HTTP 429) by Bot API method; outcome: retried after retry_after, or gave_up when the "
    "call's retry budget was spent (the call failed).",
    ["method", "outcome"],
)
OUTBOX_LENGTH = Gauge(
    "artmatch_bot_outbox_length",
    "Votes and likes queued in Redis while Postgres was down, waiting to be written (NaN: Redis unreachable).",
)
OUTBOX_DEAD_LETTERS = Gauge(
    "artmatch_bot_outbox_dead_letters",
    "Queued events set aside because they can never be written (NaN: Redis unreachable).",
)


def count_flood_wait(method: str, *, gave_up: bool) -> None:
    TELEGRAM_429.labels(method=method, outcome="gave_up" if gave_up else "retried").inc()


async def read_outbox(outbox: FeedbackOutbox) -> None:
    """Set the outbox gauges from Redis; NaN when Redis is away (unknown, not empty)."""
    length: float
    dead: float
    try:
        length, dead = await outbox.size(), await outbox.dead_letter_count()
    except REDIS_DOWN as exc:
        logger.debug("metrics: outbox unreadable (%s)", type(exc).__name__)
        length = dead = math.nan
    OUTBOX_LENGTH.set(length)
    OUTBOX_DEAD_LETTERS.set(dead)


async def healthz(request: web.Request) -> web.Response:
    """Alive: the process's event loop answers. Deliberately not Redis, Postgres or Telegram: the bot rides out
    their outages by design (README, Reliability), and a check that failed with them would have an orchestrator
    restart every replica at once for a fault a restart cannot mend, dropping the photos in flight."""
    return web.json_response({"status": "ok"})


def metrics_app(outbox: FeedbackOutbox) -> web.Application:
    async def metrics(request: web.Request) -> web.Response:
        await read_outbox(outbox)
        body = generate_latest(REGISTRY)
        # aiohttp wants the charset apart from the content type
        content_type, _, charset = CONTENT_TYPE_LATEST.partition("; charset=")
        return web.Response(body=body, content_type=content_type, charset=charset or None)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    return app


@contextlib.asynccontextmanager
async def metrics_server(host: str, port: int, outbox: FeedbackOutbox) -> AsyncIterator[None]:
    """Serve /metrics while the block runs; port 0 serves nothing. A port already taken is logged, not fatal:
    the bot answering users matters more than its metrics."""
    if port == 0:
        yield
        return
    runner = web.AppRunner(metrics_app(outbox), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            logger.error("metrics: cannot listen on %s:%d (%s); running without /metrics", host, port, exc)
        else:
            logger.info("metrics: serving http://%s:%d/metrics", host, port)
        yield
    finally:
        await runner.cleanup()
