"""Queries for holdouts and the experiments using them. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, ExperimentHoldout


async def list_holdouts(
    session: AsyncSession, team_id: int, *, limit: int, offset: int
) -> tuple[int, Sequence[ExperimentHoldout]]:
    base = select(ExperimentHoldout).where(ExperimentHoldout.team_id == team_id)
    count = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
    rows = (
        await session.exec(
            base.order_by(col(ExperimentHoldout.created_at).desc(), col(ExperimentHoldout.id).desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    return count, rows


async def live_experiments_using(session: AsyncSession, team_id: int, holdout_id: int) -> list[int]:
    result = await session.exec(
        select(Experiment.id)
        .where(
            Experiment.team_id == team_id,
            Experiment.holdout_id == holdout_id,
            col(Experiment.deleted).is_(False),
        )
        .order_by(col(Experiment.id))
    )
    return [i for i in result.all() if i is not None]


async def detach_from_deleted_experiments(session: AsyncSession, team_id: int, holdout_id: int) -> None:
    """The foreign key's ON DELETE SET NULL for soft-deleted experiments.

    Their workflows have finished and refuse writes; a restored experiment must not point at a
    holdout id the database may hand out again.
    """
    await session.exec(
        update(Experiment)
        .where(
            col(Experiment.team_id) == team_id,
            col(Experiment.holdout_id) == holdout_id,
            col(Experiment.deleted).is_(True),
        )
        .values(holdout_id=None)
    )
