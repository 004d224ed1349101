"""What the service tells Prometheus (`GET /metrics`): per-stage latency, responses by route and status, and the
depth of every model queue.

The metrics live in the process's default registry and are defined once, here, at import: several apps in one
process (the tests) share them. The access-log middleware (`observe_request`) feeds the latency and response metrics for
every route, from the per-stage `timings_ms` the handlers already leave in `request.state.timings`, so no route
records its own; the queue depths are read from the running batchers when Prometheus scrapes.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import Match
from starlette.types import Scope

from inference.batcher import running_batchers

# From a 1 ms decode of a small photo to minutes of describing on a CPU.
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
UNMATCHED = "unmatched"
"""The route label of a request no route matches (a scanner's guesses must not make one series each)."""

STAGE_SECONDS = Histogram(
    "artmatch_inference_stage_seconds",
    "Time of one stage of a request (decode, clip, search, describe, text_embed, identify_*, …; total = the whole "
    "handler), from the answer's timings_ms.",
    ["route", "stage"],
    buckets=STAGE_BUCKETS,
)
RESPONSES = Counter(
    "artmatch_inference_responses",
    "Responses by route template and HTTP status (503 = a model queue was full; 499 = the client hung up).",
    ["route", "status"],
)

PHOTO_DECODES = Counter(
    "artmatch_inference_photo_decodes",
    "Uploaded photos decoded (outcome=decoded), or served by another request's decode of the same bytes in the last "
    "30 s (outcome=reused: the bot sends each photo to /v1/look and /v1/analyze).",
    ["outcome"],
)


class QueueCollector(Collector):
    """The model queues (clip, describe, clip_text, translate_*), read from the batchers when scraped."""

    def collect(self) -> Iterable[Metric]:
        waiting: Tally[str] = Tally()
        computing: Tally[str] = Tally()
        dropped: Tally[str] = Tally()
        for batcher in running_batchers():  # two apps in one process (tests) add up
            waiting[batcher.name] += batcher.queued
            computing[batcher.name] += batcher.in_batch
            dropped[batcher.name] += batcher.dropped
        yield _family(GaugeMetricFamily, "artmatch_inference_queue_depth", "Items waiting for a batch.", waiting)
        yield _family(
            GaugeMetricFamily, "artmatch_inference_queue_computing", "Items in the batch being computed.", computing
        )
        yield _family(
            CounterMetricFamily,
            "artmatch_inference_queue_dropped",
            "Queued items dropped because their client gave up (since the queue started).",
            dropped,
        )

    def describe(self) -> Iterable[Metric]:
        return list(self.collect())


def _family(kind: Any, name: str, documentation: str, values: Mapping[str, int]) -> Metric:
    family = kind(name, documentation, labels=["queue"])
    for queue, value in sorted(values.items()):
        family.add_metric([queue], value)
    return family


REGISTRY.register(QueueCollector())


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def observe(route: str, status: int, timings_ms: Mapping[str, float] | None) -> None:
    """Count one response and record the stages it timed."""
    RESPONSES.labels(route=route, status=str(status)).inc()
    for stage, ms in (timings_ms or {}).items():
        STAGE_SECONDS.labels(route=route, stage=stage).observe(ms / 1000.0)


def route_template(scope: Scope) -> str:
    """`/v1/artworks/{artwork_id}`, not `/v1/artworks/17`: the route the router chose, or, for a request refused
    before routing (401, 408, 413), the route it would have reached; UNMATCHED for no route."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    router = getattr(scope.get("app"), "router", None)
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match != Match.NONE and isinstance(getattr(route, "path", None), str):
            return str(route.path)
    return UNMATCHED


def observe_request(scope: Scope, status: int, timings_ms: Mapping[str, float] | None) -> None:
    """`AccessLog`'s observer: count the response under its route template, and its stages when it succeeded."""
    observe(route_template(scope), status, timings_ms if status < 400 else None)
