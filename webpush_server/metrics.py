"""Prometheus metrics: what every process counts, and the text /metrics serves.

Processes share nothing in memory: gunicorn runs several web workers, and the RQ workers are
processes of their own. With PROMETHEUS_MULTIPROC_DIR set (before the process starts: the
client library reads it on import), every process writes its values into files in that
folder and exposition() merges them, so the web's /metrics shows the whole host: all web
workers and every RQ worker started with the same folder. Without it (tests, a lone
process) the values live in this process's REGISTRY.

Declaring a metric only names it; nothing is written until a value is recorded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

DELIVERIES = Counter(
    "webpush_deliveries",
    "Deliveries by the state a job left them in (retrying: due again later).",
    ["channel", "outcome", "origin"],
    registry=REGISTRY,
)
SEND_SECONDS = Histogram(
    "webpush_send_seconds",
    "Time from sending a push request to its response, per push service origin.",
    ["origin"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
LIVE_CONNECTIONS = Gauge(
    "webpush_live_connections",
    "Open live channels (WebSocket or SSE) of this host's web processes.",
    ["transport"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "webpush_job_runs",
    "RQ jobs run, by job name and how they ended.",
    ["job", "status"],
    registry=REGISTRY,
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def count_deliveries(tally: Mapping[tuple[str, str], int], channel: str = "push") -> None:
    """Add committed outcomes: tally maps (origin, outcome) to a number of deliveries."""
    for (origin, outcome), number in tally.items():
        DELIVERIES.labels(channel=channel, outcome=outcome, origin=origin).inc(number)


def observe_sends(durations: Iterable[tuple[str, float]]) -> None:
    """Record send latencies: (origin, seconds) per request that got a response."""
    for origin, seconds in durations:
        SEND_SECONDS.labels(origin=origin).observe(seconds)


def multiprocess_dir() -> str | None:
    """Return PROMETHEUS_MULTIPROC_DIR when this process runs in multiprocess mode."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry(*extra: Collector) -> CollectorRegistry:
    """Return the registry to expose: the host's merged files, or this process's values."""
    folder = multiprocess_dir()
    if folder:
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=folder)
    else:
        merged = REGISTRY
    if not extra:
        return merged
    # Scrape-time collectors (queue depths) join a registry of their own for this scrape.
    scrape = CollectorRegistry()
    scrape.register(_Merged(merged))
    for collector in extra:
        scrape.register(collector)
    return scrape


def exposition(*extra: Collector) -> bytes:
    """Return the Prometheus text of every metric, plus the scrape-time collectors given."""
    return generate_latest(registry(*extra))


class _Merged(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self):
        return self.source.collect()
