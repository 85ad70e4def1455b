"""Queries for saved metrics and their links to experiments. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, ExperimentSavedMetric, ExperimentToSavedMetric


async def saved_metric_by_id(
    session: AsyncSession, team_id: int, saved_metric_id: int
) -> ExperimentSavedMetric | None:
    metric = await session.get(ExperimentSavedMetric, saved_metric_id)
    return metric if metric is not None and metric.team_id == team_id else None


async def list_saved_metrics(
    session: AsyncSession, team_id: int, *, limit: int, offset: int
) -> tuple[int, Sequence[ExperimentSavedMetric]]:
    base = select(ExperimentSavedMetric).where(ExperimentSavedMetric.team_id == team_id)
    count = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
    rows = (
        await session.exec(
            base.order_by(func.lower(ExperimentSavedMetric.name), col(ExperimentSavedMetric.id))
            .offset(offset)
            .limit(limit)
        )
    ).all()
    return count, rows


async def live_experiments_linked(session: AsyncSession, saved_metric_id: int) -> list[int]:
    result = await session.exec(
        select(ExperimentToSavedMetric.experiment_id)
        .join(Experiment, col(Experiment.id) == col(ExperimentToSavedMetric.experiment_id))
        .where(
            ExperimentToSavedMetric.saved_metric_id == saved_metric_id,
            col(Experiment.deleted).is_(False),
        )
        .order_by(col(ExperimentToSavedMetric.experiment_id))
    )
    return list(result.all())


async def replace_links(
    session: AsyncSession, experiment_id: int, links: Sequence[dict[str, Any]], now: datetime
) -> None:
    """Make the experiment's links exactly `links` (`{saved_metric_id, metadata}` plans): unlisted
    links go, listed ones get their metadata, new ones are created (PATCH `saved_metrics_ids`)."""
    wanted = {int(link["saved_metric_id"]): link.get("metadata") or {} for link in links}
    existing = (
        await session.exec(
            select(ExperimentToSavedMetric).where(ExperimentToSavedMetric.experiment_id == experiment_id)
        )
    ).all()
    for row in existing:
        if row.saved_metric_id not in wanted:
            await session.delete(row)
        elif row.metadata_ != wanted[row.saved_metric_id]:
            row.metadata_ = wanted[row.saved_metric_id]
            row.updated_at = now
            session.add(row)
    kept = {row.saved_metric_id for row in existing}
    for saved_metric_id, metadata in wanted.items():
        if saved_metric_id not in kept:
            session.add(
                ExperimentToSavedMetric(
                    experiment_id=experiment_id,
                    saved_metric_id=saved_metric_id,
                    metadata_=metadata,
                    created_at=now,
                    updated_at=now,
                )
            )
    await session.flush()


async def delete_links_of(session: AsyncSession, saved_metric_id: int) -> None:
    """Links of soft-deleted experiments (their workflows refuse writes) go with the metric."""
    await session.exec(
        delete(ExperimentToSavedMetric).where(col(ExperimentToSavedMetric.saved_metric_id) == saved_metric_id)
    )
