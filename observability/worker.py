"""The worker's observability: an activity interceptor (log context, one log line and metrics per
activity attempt) and its metrics endpoint on WORKER_METRICS_PORT.

The endpoint serves Flagship's metrics and the Temporal SDK's own (`temporal_request_*`,
`temporal_worker_task_slots_*`, `temporal_activity_execution_latency_seconds`, ...; see
observability/temporal_metrics.py), so operators scrape one target per worker. Workflow code is untouched: the interceptor
wraps activities only, outside the sandbox.
"""

from __future__ import annotations

import asyncio
import logging
import re
from time import perf_counter
from typing import Any

from prometheus_client import start_http_server
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from observability import metrics, tracing
from observability.context import CURRENT, LogContext
from observability.temporal_metrics import sdk_metrics_runtime
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


def start_worker_telemetry(settings: Settings) -> Runtime | None:
    """Tracing (when configured) and the metrics endpoint (when WORKER_METRICS_PORT is set).

    Returns the Runtime to connect the worker's client with, or None for the default one.
    """
    tracing.configure(settings, "flagship-worker")
    if not settings.metrics_enabled or settings.worker_metrics_port is None:
        return None
    runtime = sdk_metrics_runtime()
    start_http_server(settings.worker_metrics_port, addr=settings.host)
    log.info("worker metrics on http://%s:%d/metrics", settings.host, settings.worker_metrics_port)
    return runtime
