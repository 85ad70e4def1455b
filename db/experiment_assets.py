"""Queries for holdouts and saved metrics. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import ExperimentHoldout, ExperimentSavedMetric, ExperimentToSavedMetric


async def holdout_by_id(session: AsyncSession, team_id: int, holdout_id: int) -> ExperimentHoldout | None:
    holdout = await session.get(ExperimentHoldout, holdout_id)
    return holdout if holdout is not None and holdout.team_id == team_id else None


async def saved_metrics_by_ids(
    session: AsyncSession, team_id: int, ids: Sequence[int]
) -> dict[int, ExperimentSavedMetric]:
    if not ids:
        return {}
    rows = (
        await session.exec(
            select(ExperimentSavedMetric).where(
                ExperimentSavedMetric.team_id == team_id, col(ExperimentSavedMetric.id).in_(list(ids))
            )
        )
    ).all()
    return {row.id: row for row in rows if row.id is not None}


async def links_of(session: AsyncSession, experiment_id: int) -> Sequence[ExperimentToSavedMetric]:
    return (
        await session.exec(
            select(ExperimentToSavedMetric)
            .where(ExperimentToSavedMetric.experiment_id == experiment_id)
            .order_by(col(ExperimentToSavedMetric.id))
        )
    ).all()
