"""Queries for timeseries recalculations and stored metric results. Helpers never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, ExperimentMetricResult, ExperimentTimeseriesRecalculation, Project
from db.types import utcnow

ACTIVE = ("pending", "in_progress")


async def active_recalculation(
    session: AsyncSession, experiment_id: int, fingerprint: str
) -> ExperimentTimeseriesRecalculation | None:
    result = await session.exec(
        select(ExperimentTimeseriesRecalculation).where(
            ExperimentTimeseriesRecalculation.experiment_id == experiment_id,
            ExperimentTimeseriesRecalculation.fingerprint == fingerprint,
            col(ExperimentTimeseriesRecalculation.status).in_(ACTIVE),
        )
    )
    return result.first()


async def create_recalculation(
    session: AsyncSession, team_id: int, experiment_id: int, metric: dict[str, Any], fingerprint: str
) -> ExperimentTimeseriesRecalculation:
    """Replace the stored series of (experiment, metric uuid, fingerprint) by a pending request.

    The flush raises IntegrityError when another request for the fingerprint became active first.
    """
    await session.exec(
        delete(ExperimentMetricResult).where(
            col(ExperimentMetricResult.experiment_id) == experiment_id,
            col(ExperimentMetricResult.metric_uuid) == str(metric.get("uuid")),
            col(ExperimentMetricResult.fingerprint) == fingerprint,
        )
    )
    row = ExperimentTimeseriesRecalculation(
        id=str(uuid.uuid4()),
        team_id=team_id,
        experiment_id=experiment_id,
        metric=metric,
        fingerprint=fingerprint,
    )
    session.add(row)
    await session.flush()
    return row


async def recalculation(
    session: AsyncSession, recalculation_id: str
) -> ExperimentTimeseriesRecalculation | None:
    return await session.get(ExperimentTimeseriesRecalculation, recalculation_id)


async def set_recalculation(
    session: AsyncSession, recalculation_id: str, status: str, *, last_successful_date: date | None = None
) -> None:
    row = await session.get(ExperimentTimeseriesRecalculation, recalculation_id)
    if row is None:
        return
    row.status = status
    if last_successful_date is not None:
        row.last_successful_date = last_successful_date
    session.add(row)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    table = ExperimentMetricResult.__table__  # type: ignore[attr-defined]
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


async def upsert_result(
    session: AsyncSession,
    *,
    experiment_id: int,
    metric_uuid: str,
    fingerprint: str | None,
    query_from: datetime,
    query_to: datetime,
    result: dict[str, Any] | None,
    error: str | None = None,
) -> None:
    """One row per (experiment, metric uuid, query_to): a re-run of the day overwrites it."""
    now = utcnow()
    values = {
        "experiment_id": experiment_id,
        "metric_uuid": metric_uuid,
        "fingerprint": fingerprint,
        "query_from": query_from,
        "query_to": query_to,
        "status": "failed" if error is not None else "completed",
        "result": result,
        "completed_at": None if error is not None else now,
        "error_message": error,
        "created_at": now,
        "updated_at": now,
    }
    stmt = _insert(session).values(values)
    changed = {
        k: stmt.excluded[k]
        for k in values
        if k not in ("experiment_id", "metric_uuid", "query_to", "created_at")
    }
    await session.exec(
        stmt.on_conflict_do_update(index_elements=["experiment_id", "metric_uuid", "query_to"], set_=changed)
    )


async def results_for(
    session: AsyncSession, experiment_id: int, metric_uuid: str, fingerprint: str
) -> Sequence[ExperimentMetricResult]:
    result = await session.exec(
        select(ExperimentMetricResult)
        .where(
            ExperimentMetricResult.experiment_id == experiment_id,
            ExperimentMetricResult.metric_uuid == metric_uuid,
            ExperimentMetricResult.fingerprint == fingerprint,
        )
        .order_by(col(ExperimentMetricResult.query_to))
    )
    return result.all()


async def running_experiments_at_hour(
    session: AsyncSession, hour: int, now: datetime
) -> list[tuple[int, int]]:
    """(project id, experiment id) of running experiments in projects refreshed at this UTC hour."""
    result = await session.exec(
        select(Experiment.team_id, Experiment.id)
        .join(Project, col(Project.id) == col(Experiment.team_id))
        .where(
            Project.experiment_recalculation_hour == hour,
            col(Experiment.start_date).is_not(None),
            col(Experiment.start_date) <= now,
            col(Experiment.end_date).is_(None),
            col(Experiment.deleted).is_(False),
            col(Experiment.archived).is_(False),
        )
        .order_by(col(Experiment.id))
    )
    return [(team_id, experiment_id) for team_id, experiment_id in result.all() if experiment_id is not None]
