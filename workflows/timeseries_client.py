"""Starting timeseries work from outside workflows: the API's recalculation request, the
experiment-wide trigger, and the hourly schedule (created idempotently at worker start-up).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.plugin import SimplePlugin
from temporalio.service import RPCError

from domain.timeseries_messages import DailyInput, ExperimentRecalculationInput, RecalculationInput
from workflows.timeseries_names import (
    DAILY_SCHEDULE_ID,
    DAILY_WORKFLOW_TYPE,
    EXPERIMENT_RECALCULATION_WORKFLOW_TYPE,
    RECALCULATION_WORKFLOW_TYPE,
    experiment_recalculation_workflow_id,
    recalculation_workflow_id,
)

log = logging.getLogger("flagship.timeseries")


async def start_recalculation(
    client: Client, recalculation_id: str, *, task_queue: str, rpc_timeout: timedelta | None = None
) -> WorkflowHandle[Any, Any]:
    """The workflow of one `recalculate_timeseries/` request (id `experiment-recalculation-<uuid>`)."""
    return await client.start_workflow(
        RECALCULATION_WORKFLOW_TYPE,
        RecalculationInput(recalculation_id=recalculation_id),
        id=recalculation_workflow_id(recalculation_id),
        task_queue=task_queue,
        rpc_timeout=rpc_timeout,
        static_summary=f"Timeseries recalculation {recalculation_id}",
    )


async def trigger_recalculation(
    client: Client, project_id: int, experiment_id: int, *, task_queue: str, reason: str = "manual"
) -> WorkflowHandle[Any, Any]:
    """Recalculate every metric's series of an experiment (call on launch and on end).

    Metrics whose fingerprint already has an active request are left to it. Calling it again while
    a run for the same reason is in flight returns that run (USE_EXISTING).
    """
    return await client.start_workflow(
        EXPERIMENT_RECALCULATION_WORKFLOW_TYPE,
        ExperimentRecalculationInput(project_id=project_id, experiment_id=experiment_id, reason=reason),
        id=experiment_recalculation_workflow_id(project_id, experiment_id, reason),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


def daily_schedule(task_queue: str) -> Schedule:
    """Every hour on the hour; each run refreshes the projects whose hour it is (default 02:00 UTC).

    One hourly schedule instead of upstream's 24: same effect, one object to manage. Overlaps are
    skipped (a slow run must not pile up), and a run missed by less than an hour still happens.
    """
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DAILY_WORKFLOW_TYPE, DailyInput(), id=DAILY_SCHEDULE_ID, task_queue=task_queue
        ),
        # Intervals are aligned to the Unix epoch: every run starts on the hour, UTC.
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=1)),
    )


async def ensure_daily_schedule(client: Client, task_queue: str) -> None:
    """Create the schedule, or bring an existing one up to date (several workers may race: fine)."""
    schedule = daily_schedule(task_queue)
    try:
        await client.create_schedule(DAILY_SCHEDULE_ID, schedule)
        return
    except ScheduleAlreadyRunningError:
        pass

    def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(DAILY_SCHEDULE_ID).update(replace)


def daily_schedule_plugin(client: Client, task_queue: str) -> SimplePlugin:
    """A worker plugin that ensures the schedule whenever the worker starts (`run` or `async with`)."""

    @contextlib.asynccontextmanager
    async def ensure() -> AsyncIterator[None]:
        try:
            await ensure_daily_schedule(client, task_queue)
            log.info("daily experiment recalculation schedule %s ensured", DAILY_SCHEDULE_ID)
        except RPCError as err:
            # Experiment lifecycles matter more than tomorrow's refresh: run anyway, and let the
            # next worker start (or any other worker) create the schedule.
            log.warning("could not ensure schedule %s: %s", DAILY_SCHEDULE_ID, err)
        yield

    return SimplePlugin("flagship.timeseries-schedule", run_context=ensure)
