"""Flagship's Prometheus metrics, named and labelled once, here.

Conventions: `flagship_` prefix, base units (`_seconds`), `_total` on counters, and labels with a
small fixed set of values (route templates, operations, outcomes): never an experiment, project,
user or distinct id, which would make a series per entity.

The API serves these at `GET /metrics`; the worker on WORKER_METRICS_PORT (observability.worker),
together with the Temporal SDK's own metrics. With WEB_CONCURRENCY > 1 the API processes write to
prometheus_client's multiprocess files (`prepare_multiprocess`) and `/metrics` sums them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from time import perf_counter
from typing import TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from observability import hot
from observability.hot import MULTIPROC_ENV

T = TypeVar("T")

# From sub-millisecond /flags answers to multi-second Temporal round trips.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Recalculations scan events: seconds to many minutes.
RECALCULATION_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)

# ---- API: HTTP ------------------------------------------------------------------------------

# The request-path metrics are `hot` ones (observability/hot.py): a fraction of a µs per update.
HTTP_REQUESTS = hot.counter(
    "flagship_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = hot.histogram(
    "flagship_http_request_duration_seconds",
    "Time from receiving an HTTP request to the end of its response, by method and route template.",
    ["method", "route"],
    LATENCY_BUCKETS,
)

# ---- API: SDK hot path -----------------------------------------------------------------------

# Their latency: flagship_http_request_duration_seconds{route="/flags"} (or "/decide").
FLAG_EVALUATIONS = hot.counter(
    "flagship_flag_evaluations",
    "Remote flag evaluation requests (POST /flags, /decide) by endpoint and outcome "
    "(evaluated, rejected: a 4xx such as a bad token, error: a 5xx).",
    ["endpoint", "outcome"],
)
EVENTS_INGESTED = Counter("flagship_events_ingested", "Events stored by the capture endpoints.")
CAPTURE_BATCHES = hot.counter(
    "flagship_capture_batches",
    "Capture requests (/batch, /e, /capture, ...) by outcome: accepted, or why the whole batch was "
    "rejected (invalid, unauthorized, too_large, unavailable, error).",
    ["outcome"],
)

# ---- experiments ----------------------------------------------------------------------------

EXPERIMENT_TRANSITIONS = Counter(
    "flagship_experiment_transitions",
    "Experiment changes requested through the REST API (workflow updates), by operation and outcome "
    "(accepted, rejected, conflict, approval_required, not_found, unavailable).",
    ["operation", "outcome"],
)
WORKFLOW_TRANSITIONS = Counter(
    "flagship_workflow_transitions",
    "Lifecycle transitions the worker applied or refused, whatever asked for them, by operation, "
    "origin (rest, signal, timer, approval) and outcome.",
    ["operation", "via", "outcome"],
)

# ---- worker ---------------------------------------------------------------------------------

ACTIVITY_DURATION = Histogram(
    "flagship_activity_duration_seconds",
    "Activity executions (each attempt) by activity type and outcome "
    "(completed, rejected, conflict, approval_required, failed).",
    ["activity", "outcome"],
    buckets=LATENCY_BUCKETS,
)
RECALCULATION_DURATION = Histogram(
    "flagship_recalculation_duration_seconds",
    "Timeseries recalculations (backfill: a metric's whole series; daily: one metric's last day).",
    ["kind"],
    buckets=RECALCULATION_BUCKETS,
)
RECALCULATION_FAILURES = Counter(
    "flagship_recalculation_failures", "Timeseries recalculations that failed, by kind.", ["kind"]
)


def record_transition(operation: str, outcome: str) -> None:
    EXPERIMENT_TRANSITIONS.labels(operation, outcome).inc()


async def timed_recalculation(kind: str, work: Awaitable[T]) -> T:
    """`await timed_recalculation("daily", refresh(...))`: times it; an exception or a False result
    counts as a failure."""
    started = perf_counter()
    try:
        result = await work
    except BaseException:
        RECALCULATION_FAILURES.labels(kind).inc()
        raise
    finally:
        RECALCULATION_DURATION.labels(kind).observe(perf_counter() - started)
    if result is False:
        RECALCULATION_FAILURES.labels(kind).inc()
    return result


# ---- exposition -----------------------------------------------------------------------------


def prepare_multiprocess(processes: int) -> None:
    """Before uvicorn starts several API processes: they share metrics through files in one directory.

    prometheus_client reads the variable when each (spawned) process imports it. The directory
    must start empty; an operator-provided one is emptied, our own is removed at exit.
    """
    if processes <= 1:
        return
    existing = os.environ.get(MULTIPROC_ENV)
    if existing:
        for stale in Path(existing).glob("*.db"):
            stale.unlink()
        return
    directory = tempfile.mkdtemp(prefix="flagship-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


_aggregated: CollectorRegistry | None = None


def exposition() -> tuple[bytes, str]:
    """The text format of every metric of this process, or of all API processes in multiprocess mode."""
    global _aggregated
    if os.environ.get(MULTIPROC_ENV):
        if _aggregated is None:
            _aggregated = CollectorRegistry()
            MultiProcessCollector(_aggregated)  # type: ignore[no-untyped-call]
        return generate_latest(_aggregated), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
