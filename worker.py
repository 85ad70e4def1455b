"""Composition root of the worker: settings -> engine -> activities -> Worker.

`python worker.py` runs one worker against TEMPORAL_ADDRESS (it never starts a server).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.approvals import ApprovalActivities
from activities.autopilot import AutopilotActivities
from activities.experiments import ExperimentActivities
from activities.timeseries import TimeseriesActivities
from db.clickhouse.store import ClickHouseEvents
from db.engine import make_async_engine, make_sessionmaker
from observability.logs import configure_logging
from observability.tracing import instrument_engine
from observability.worker import ActivityObserver, start_worker_telemetry
from settings import Settings, load_settings
from workflows.client import connect_with_retry
from workflows.experiment import ExperimentWorkflow
from workflows.experiment_autopilot import AutopilotNotifyWorkflow
from workflows.timeseries import TIMESERIES_WORKFLOWS
from workflows.timeseries_client import daily_schedule_plugin

log = logging.getLogger("flagship.worker")


def build_worker(
    client: Client, settings: Settings, engine: AsyncEngine, *, sandboxed: bool = True, **overrides: object
) -> Worker:
    """The worker; `sandboxed=False` (what `python worker.py` runs) skips Temporal's workflow sandbox.

    The sandbox re-checks every module access and re-imports per workflow run: about 4 ms of each
    lifecycle transition here. It is a guard against non-deterministic workflow code, so the test
    suite, which builds its workers with the default, and the replay test keep it on; production
    runs the same code without paying for the check on every activation (ARCHITECTURE.md).
    """
    # SQL spans when tracing is on; with EVENTS_BACKEND=clickhouse, analyses run in ClickHouse.
    sessionmaker = make_sessionmaker(
        instrument_engine(engine), events=ClickHouseEvents.from_settings(settings)
    )
    experiment_activities = ExperimentActivities(sessionmaker)
    approval_activities = ApprovalActivities(sessionmaker)
    options: dict[str, object] = {
        "task_queue": settings.task_queue,
        "workflows": [ExperimentWorkflow, AutopilotNotifyWorkflow, *TIMESERIES_WORKFLOWS],
        "activities": [
            *experiment_activities.all(),
            approval_activities.apply_change_request,
            approval_activities.expire_change_request,
            *TimeseriesActivities(sessionmaker).all(),
            *AutopilotActivities(sessionmaker).all(),
        ],
        # Ensures the hourly results-refresh schedule whenever this worker starts.
        "plugins": [daily_schedule_plugin(client, settings.task_queue)],
        # Log context, one log line and metrics per activity attempt (observability/worker.py).
        "interceptors": [ActivityObserver()],
        # In-flight activities get this long to finish on SIGTERM before the worker exits.
        "graceful_shutdown_timeout": timedelta(seconds=10),
    }
    if not sandboxed:
        options["workflow_runner"] = UnsandboxedWorkflowRunner()
    options.update(overrides)
    return Worker(client, **options)  # type: ignore[arg-type]


async def run_worker(settings: Settings) -> None:
    if settings.temporal_address is None:
        raise SystemExit("flagship worker: TEMPORAL_ADDRESS must point at a Temporal server")
    runtime = start_worker_telemetry(settings)  # metrics on WORKER_METRICS_PORT, tracing if configured
    client = await connect_with_retry(settings.temporal_address, settings.temporal_namespace, runtime=runtime)
    engine = make_async_engine(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_worker(client, settings, engine, sandboxed=False):
            log.info("worker polling task queue %s", settings.task_queue)
            await stop.wait()
    finally:
        await engine.dispose()


def main() -> int:
    settings = load_settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
