"""`…/experiments/{id}/recalculate_timeseries/` and `…/timeseries_results/` (reference §4.13, §4.14).

A request is a row plus its own workflow (`experiment-recalculation-<uuid>`); the read endpoint is
pure SQL, so results stay readable while no worker runs.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Body, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found, service_unavailable
from api.render import bad_request, iso
from api.routing import FlexRouter
from api.temporal import TemporalConnection
from db import experiments as queries
from db import timeseries as store
from db.tables import Experiment, ExperimentMetricResult, ExperimentTimeseriesRecalculation
from db.types import utcnow
from domain.metric_engine import analysis_days, result_day, zone
from workflows.timeseries_client import start_recalculation

router = FlexRouter(tags=["experiments"])

# Project secret keys only reach list and retrieve upstream (reference §2), not these actions.
READ = Depends(ProjectAuth("experiment:read"))
WRITE = Depends(ProjectAuth("experiment:write"))


async def _experiment(session: AsyncSession, ctx: ProjectContext, experiment_id: int) -> Experiment:
    experiment = await queries.experiment_by_id(session, ctx.project_id, experiment_id)
    if experiment is None:
        raise not_found()
    return experiment


def _recalculation_out(row: ExperimentTimeseriesRecalculation) -> dict[str, Any]:
    return {
        "id": row.id,
        "experiment_id": row.experiment_id,
        "metric_uuid": row.metric.get("uuid"),
        "fingerprint": row.fingerprint,
        "status": row.status,
        "created_at": iso(row.created_at),
    }


async def _start(
    request: Request, session: AsyncSession, row: ExperimentTimeseriesRecalculation
) -> ExperimentTimeseriesRecalculation:
    """Start the request's workflow; if that fails the row is `failed` (upstream) and we answer 503."""
    temporal: TemporalConnection = request.app.state.temporal
    try:
        client = await temporal.client()
        await start_recalculation(
            client, row.id, task_queue=temporal.task_queue, rpc_timeout=temporal.rpc_timeout
        )
    except Exception as exc:
        await store.set_recalculation(session, row.id, "failed")
        await session.commit()
        raise service_unavailable("Could not start the timeseries recalculation. Try again shortly.") from exc
    return row


@router.post(
    "/experiments/{experiment_id}/recalculate_timeseries/", summary="Recalculate a metric's timeseries"
)
async def recalculate_timeseries(
    request: Request,
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    body: Annotated[Any, Body()] = None,
) -> JSONResponse:
    experiment = await _experiment(session, ctx, experiment_id)  # 404 first, as get_object() upstream
    data = body if isinstance(body, dict) else {}
    metric, fingerprint = data.get("metric"), data.get("fingerprint")
    if not metric or not isinstance(metric, dict):
        raise bad_request("metric is required")
    if not fingerprint or not isinstance(fingerprint, str):
        raise bad_request("fingerprint is required")
    if not isinstance(metric.get("uuid"), str) or not metric["uuid"]:
        raise bad_request("metric.uuid is required")  # results are keyed by it
    if experiment.start_date is None:
        raise bad_request("Cannot recalculate timeseries for experiment that hasn't started")
    existing = await store.active_recalculation(session, experiment_id, fingerprint)
    if existing is not None:
        return JSONResponse(_recalculation_out(existing), status_code=200)
    try:
        row = await store.create_recalculation(session, ctx.project_id, experiment_id, metric, fingerprint)
        await session.commit()
    except IntegrityError:
        # A concurrent request won the partial unique index: answer with its row, as upstream.
        await session.rollback()
        existing = await store.active_recalculation(session, experiment_id, fingerprint)
        if existing is None:
            raise
        return JSONResponse(_recalculation_out(existing), status_code=200)
    row = await _start(request, session, row)
    return JSONResponse(_recalculation_out(row), status_code=201)


def _status(days: list[str], completed: set[str], failed: set[str]) -> str:
    if not completed and not failed:
        return "pending"
    if not completed:
        return "failed"
    return "completed" if len(completed) == len(days) else "partial"


def _series(
    rows: list[ExperimentMetricResult], days: list[date], timezone: str
) -> tuple[dict[str, Any], dict[str, str], list[ExperimentMetricResult]]:
    """Results by day key (completed only), error messages by day key, and the rows that landed."""
    tz = zone(timezone)
    timeseries: dict[str, Any] = {d.isoformat(): None for d in days}
    errors: dict[str, str] = {}
    landed = []
    for row in rows:
        key = result_day(row.query_to, tz).isoformat()
        if key not in timeseries:
            continue
        landed.append(row)
        if row.status == "completed" and row.result is not None:
            timeseries[key] = {k: v for k, v in row.result.items() if k != "step_sessions"}
            errors.pop(key, None)
        elif row.status == "failed" and timeseries[key] is None:
            errors[key] = row.error_message or ""
    return timeseries, errors, landed


@router.get(
    "/experiments/{experiment_id}/timeseries_results/",
    summary="A metric's daily results",
    description=(
        "Each day is the cumulative ExperimentQuery result as of that day's end, its `srm` and "
        "sequential interval included. The fingerprint includes non-default sequential, CUPED and "
        "correction settings, so changing them starts a new (pending) series."
    ),
)
async def timeseries_results(
    request: Request, experiment_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    experiment = await _experiment(session, ctx, experiment_id)
    metric_uuid = request.query_params.get("metric_uuid")
    fingerprint = request.query_params.get("fingerprint")
    if not metric_uuid:
        raise bad_request("metric_uuid query parameter is required")
    if not fingerprint:
        raise bad_request("fingerprint query parameter is required")
    if experiment.start_date is None:
        raise bad_request("Experiment has not been started yet")
    days = [
        d.day
        for d in analysis_days(experiment.start_date, experiment.end_date, utcnow(), ctx.project_timezone)
    ]
    rows = list(await store.results_for(session, experiment_id, metric_uuid, fingerprint))
    timeseries, errors, landed = _series(rows, days, ctx.project_timezone)
    completed = {k for k, v in timeseries.items() if v is not None}
    active = await store.active_recalculation(session, experiment_id, fingerprint)
    finished = [r.completed_at for r in landed if r.completed_at is not None]
    return {
        "experiment_id": experiment_id,
        "metric_uuid": metric_uuid,
        "status": _status(list(timeseries), completed, set(errors)),
        "timeseries": timeseries,
        "errors": errors or None,
        "computed_at": iso(max(finished)) if finished else None,
        "created_at": iso(min((r.created_at for r in landed), default=experiment.created_at)),
        "updated_at": iso(max((r.updated_at for r in landed), default=experiment.updated_at)),
        "recalculation_status": active.status if active else None,
        "recalculation_created_at": iso(active.created_at) if active else None,
    }
