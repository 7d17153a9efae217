"""Prometheus metrics, served at ``/metrics``. Labels never carry user data."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGES_IN = Counter("fanzha_messages_in_total", "Messages received", ["channel", "kind"], registry=REGISTRY)
REPLIES_OUT = Counter("fanzha_replies_out_total", "Reply messages produced", ["channel"], registry=REGISTRY)
SCENARIOS = Counter("fanzha_scenario_total", "Turns by scenario", ["scenario"], registry=REGISTRY)
ALERTS = Counter("fanzha_group_alerts_total", "Scam-ad warnings sent in groups", registry=REGISTRY)
DUPLICATES = Counter("fanzha_duplicates_total", "Redelivered messages answered from the dedupe record",
                     registry=REGISTRY)
RATE_LIMITED = Counter("fanzha_rate_limited_total", "Messages over the rate limit", registry=REGISTRY)
ERRORS = Counter("fanzha_errors_total", "Dialog or pipeline errors", ["where"], registry=REGISTRY)
REDIS_FAILURES = Counter("fanzha_redis_failures_total", "Turns answered statically because Redis failed",
                         registry=REGISTRY)
LOCK_BUSY = Counter("fanzha_lock_busy_total", "Turns not run: the conversation stayed locked by a live holder",
                    registry=REGISTRY)
LATENCY = Histogram(
    "fanzha_pipeline_seconds", "Time to handle one message",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)

_CHILDREN: dict[tuple[Counter, tuple[str, ...]], Counter] = {}


def child(metric: Counter, *values: str) -> Counter:
    """``metric.labels(*values)``, remembered: prometheus_client takes a lock and rebuilds the
    key on every ``labels`` call (≈ 2 µs, three times a message). Its children live as long as
    the metric (nothing here calls ``remove`` or ``clear``), and the label values are a few
    channel, kind and scenario names, so the cache stays tiny."""
    key = (metric, values)
    c = _CHILDREN.get(key)
    if c is None:
        c = _CHILDREN[key] = metric.labels(*values)
    return c
