"""The worker's observability: an activity interceptor (log context, one log line and metrics per
activity attempt) and its metrics endpoint on WORKER_METRICS_PORT.

The endpoint serves Flagship's metrics and the Temporal SDK's own (`temporal_request_*`,
`temporal_worker_task_slots_*`, `temporal_activity_execution_latency_seconds`, ...): the SDK's
Runtime exports Prometheus on a loopback port of its own, and every scrape of ours includes what
it serves, so operators scrape one target per worker. Workflow code is untouched: the interceptor
wraps activities only, outside the sandbox.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import urllib.request
from collections.abc import Iterator
from time import perf_counter
from typing import Any

from prometheus_client import REGISTRY, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from observability import metrics, tracing
from observability.context import CURRENT, LogContext
from settings import Settings

log = logging.getLogger("flagship.activity")

# experiment-{project_id}-{experiment_id} (workflows/constants.py): the ids of activities whose
# input does not carry them.
_EXPERIMENT_WORKFLOW = re.compile(r"experiment-(\d+)-(\d+)")
# ApplicationError types the activities raise for refusals (activities/errors.py), as outcomes.
_REFUSALS = {
    "ValidationFailed": "rejected",
    "NotFound": "rejected",
    "PermissionDenied": "rejected",
    "PolicyConflict": "rejected",
    "Conflict": "conflict",
    "ApprovalRequired": "approval_required",
}


def outcome_of(error: BaseException) -> str:
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    if isinstance(error, ApplicationError):
        return _REFUSALS.get(error.type or "", "failed")
    return "failed"


def context_of(workflow_id: str | None, arg: Any) -> LogContext:
    """The ids an activity's input carries: request id (REST calls), project and experiment."""
    request_id = getattr(getattr(arg, "request", None), "request_id", None)
    project_id = getattr(arg, "project_id", None)
    experiment_id = getattr(arg, "experiment_id", None)
    match = _EXPERIMENT_WORKFLOW.fullmatch(workflow_id or "")
    if match is not None:
        project_id = project_id if isinstance(project_id, int) else int(match[1])
        experiment_id = experiment_id if isinstance(experiment_id, int) else int(match[2])
    return LogContext(
        request_id if isinstance(request_id, str) else None,
        project_id if isinstance(project_id, int) else None,
        experiment_id if isinstance(experiment_id, int) else None,
        workflow_id,
    )


class ActivityObserver(Interceptor):
    """`Worker(interceptors=[ActivityObserver()])`."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ObservedActivity(next)


class _ObservedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        arg = input.args[0] if input.args else None
        token = CURRENT.set(context_of(info.workflow_id, arg))
        started = perf_counter()
        outcome = "failed"
        try:
            result = await self.next.execute_activity(input)
            outcome = "completed"
            return result
        except BaseException as error:
            outcome = outcome_of(error)
            raise
        finally:
            _finished(info, arg, outcome, perf_counter() - started)
            CURRENT.reset(token)


def _finished(info: activity.Info, arg: Any, outcome: str, elapsed: float) -> None:
    metrics.ACTIVITY_DURATION.labels(info.activity_type, outcome).observe(elapsed)
    operation = getattr(arg, "operation", None)
    if info.activity_type == "experiment.transition" and isinstance(operation, str):
        via = getattr(getattr(arg, "request", None), "via", "rest")
        result = "accepted" if outcome == "completed" else outcome
        metrics.WORKFLOW_TRANSITIONS.labels(operation, str(via), result).inc()
    level = logging.WARNING if outcome in ("failed", "cancelled") else logging.INFO
    log.log(
        level,
        "activity %s %s in %.1f ms (attempt %d)",
        info.activity_type,
        outcome,
        elapsed * 1000,
        info.attempt,
        extra={
            "activity": info.activity_type,
            "outcome": outcome,
            "attempt": info.attempt,
            "duration_ms": round(elapsed * 1000, 2),
        },
    )


# ---- the worker's metrics endpoint -------------------------------------------------------------


class TemporalSdkMetrics(Collector):
    """Re-exposes what the SDK Runtime's own Prometheus endpoint serves, at scrape time."""

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> list[Metric]:
        return []  # names come from the SDK and vary; no duplicate check against them

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:  # our own loopback endpoint
                text = response.read().decode()
        except OSError as error:
            log.warning("Temporal SDK metrics unavailable: %s", error)
            return
        yield from text_string_to_metric_families(text)


def _free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker_telemetry(settings: Settings) -> Runtime | None:
    """Tracing (when configured) and the metrics endpoint (when WORKER_METRICS_PORT is set).

    Returns the Runtime to connect the worker's client with, or None for the default one.
    """
    tracing.configure(settings, "flagship-worker")
    if not settings.metrics_enabled or settings.worker_metrics_port is None:
        return None
    sdk_address = f"127.0.0.1:{_free_loopback_port()}"
    runtime = Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=sdk_address,
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            )
        )
    )
    REGISTRY.register(TemporalSdkMetrics(f"http://{sdk_address}/metrics"))
    start_http_server(settings.worker_metrics_port, addr=settings.host)
    log.info("worker metrics on http://%s:%d/metrics", settings.host, settings.worker_metrics_port)
    return runtime
