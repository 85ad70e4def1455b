"""Timeseries workflows: one per recalculation request, one per experiment-wide recalculation
(launch / end), and the hourly daily-refresh run started by the schedule.

Orchestration only: every read and write is an activity; times come from `workflow.now()` (or the
schedule's nominal time) and travel in the activity inputs, so retries see the same day range.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.timeseries import TimeseriesActivities
    from domain.timeseries_messages import (
        BackfillInput,
        BackfillResult,
        DailyDiscoverInput,
        DailyInput,
        DailyOutcome,
        DailyRefreshInput,
        DailySummary,
        DailyTarget,
        ExperimentRecalculationInput,
        RecalculationInput,
    )
    from workflows.constants import experiment_workflow_id
    from workflows.patches import EVALUATE_AFTER_DAILY_REFRESH
    from workflows.timeseries_names import (
        DAILY_WORKFLOW_TYPE,
        EXPERIMENT_RECALCULATION_WORKFLOW_TYPE,
        RECALCULATION_WORKFLOW_TYPE,
        experiment_recalculation_workflow_id,
        recalculation_workflow_id,
    )

DAILY_CONCURRENCY = 10  # experiments refreshed at once, as upstream's max 10 concurrent metrics
_SCHEDULED_START = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")


# The backfill is one event query plus a sweep, then one short write per day: minutes at most even
# for large experiments, so 30 minutes bounds a wedged attempt. It heartbeats after each day; the
# heartbeat timeout must cover the query + sweep before the first day is written.
BACKFILL_TIMEOUT = timedelta(minutes=30)
BACKFILL_HEARTBEAT = timedelta(minutes=5)
# Three attempts as upstream: a database restart or a locked SQLite file clears within seconds, and
# a retry resumes after the last stored day. Past that the request stays `failed` for the user to
# re-request; metric errors are non-retryable (raised as such by the activity).
BACKFILL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=4.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=3,
    non_retryable_error_types=["NotFound", "MetricError"],
)
# Discovery and request creation are single short queries; the daily refresh computes a handful of
# metrics for one experiment. Five attempts ride out a brief database outage without hiding a
# persistent one for long.
SHORT_TIMEOUT = timedelta(seconds=30)
REFRESH_TIMEOUT = timedelta(minutes=15)
SHORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30), maximum_attempts=5
)


@workflow.defn(name=RECALCULATION_WORKFLOW_TYPE)
class TimeseriesRecalculationWorkflow:
    """PostHog's `experiment-timeseries-recalculation-workflow`: one activity does the backfill."""

    @workflow.run
    async def run(self, inp: RecalculationInput) -> BackfillResult:
        return await workflow.execute_activity_method(
            TimeseriesActivities.backfill_metric,
            BackfillInput(recalculation_id=inp.recalculation_id, now=workflow.now()),
            start_to_close_timeout=BACKFILL_TIMEOUT,
            heartbeat_timeout=BACKFILL_HEARTBEAT,
            retry_policy=BACKFILL_RETRY,
        )


@workflow.defn(name=EXPERIMENT_RECALCULATION_WORKFLOW_TYPE)
class ExperimentRecalculationWorkflow:
    """Request a recalculation for every metric of an experiment, one child workflow each.

    Children are abandoned on completion: each request lives on as its own workflow, exactly like
    one made through `recalculate_timeseries/`.
    """

    @workflow.run
    async def run(self, inp: ExperimentRecalculationInput) -> list[str]:
        created = await workflow.execute_activity_method(
            TimeseriesActivities.prepare_experiment_recalculations,
            inp,
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=SHORT_RETRY,
        )
        for recalculation_id in created:
            await workflow.start_child_workflow(
                TimeseriesRecalculationWorkflow.run,
                RecalculationInput(recalculation_id=recalculation_id),
                id=recalculation_workflow_id(recalculation_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
        return created


def _nominal_time() -> datetime:
    """The schedule's nominal start (stable if the run starts late), else the workflow clock."""
    scheduled = workflow.info().typed_search_attributes.get(_SCHEDULED_START)
    if scheduled is None:
        return workflow.now()
    return scheduled if scheduled.tzinfo is not None else scheduled.replace(tzinfo=UTC)


@workflow.defn(name=DAILY_WORKFLOW_TYPE)
class DailyRecalculationWorkflow:
    """Refresh running experiments of the projects whose recalculation hour (UTC) this is."""

    @workflow.run
    async def run(self, inp: DailyInput) -> DailySummary:
        now = _nominal_time()
        hour = inp.hour if inp.hour is not None else now.hour
        targets = await workflow.execute_activity_method(
            TimeseriesActivities.discover_daily,
            DailyDiscoverInput(hour=hour, now=now),
            start_to_close_timeout=SHORT_TIMEOUT,
            retry_policy=SHORT_RETRY,
        )
        outcomes: list[DailyOutcome] = []
        for offset in range(0, len(targets), DAILY_CONCURRENCY):
            batch = targets[offset : offset + DAILY_CONCURRENCY]
            refreshed = await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        TimeseriesActivities.refresh_experiment_daily,
                        DailyRefreshInput(target=target, now=now),
                        start_to_close_timeout=REFRESH_TIMEOUT,
                        retry_policy=SHORT_RETRY,
                    )
                    for target in batch
                )
            )
            outcomes += refreshed
            for target, outcome in zip(batch, refreshed, strict=True):
                # Histories recorded before this evaluated nothing here (and had no `autopilot`).
                if outcome.autopilot and workflow.patched(EVALUATE_AFTER_DAILY_REFRESH):
                    await _ask_to_evaluate(target)
        return DailySummary(
            hour=hour,
            total=len(targets),
            succeeded=sum(o.succeeded for o in outcomes),
            failed=sum(o.failed for o in outcomes),
        )


async def _ask_to_evaluate(target: DailyTarget) -> None:
    """Signal the experiment's workflow to evaluate its autopilot rules on the fresh day; it acts
    exactly as on its own timer (and does nothing if the experiment no longer runs)."""
    handle = workflow.get_external_workflow_handle(
        experiment_workflow_id(target.project_id, target.experiment_id)
    )
    # No such workflow (deleted since discovery): nothing to evaluate; the refresh still counts.
    with contextlib.suppress(FailureError):
        await handle.signal("evaluate_rules")


async def start_recalculation_child(project_id: int, experiment_id: int, reason: str) -> None:
    """From workflow code (the experiment workflow on launch / end): start the experiment-wide
    recalculation as an abandoned child; one already running for the same reason is enough."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await workflow.start_child_workflow(
            ExperimentRecalculationWorkflow.run,
            ExperimentRecalculationInput(project_id=project_id, experiment_id=experiment_id, reason=reason),
            id=experiment_recalculation_workflow_id(project_id, experiment_id, reason),
            parent_close_policy=ParentClosePolicy.ABANDON,
        )


TIMESERIES_WORKFLOWS = (
    TimeseriesRecalculationWorkflow,
    ExperimentRecalculationWorkflow,
    DailyRecalculationWorkflow,
)
