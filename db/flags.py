"""Queries for feature flags. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, FeatureFlag


async def flag_by_id(session: AsyncSession, team_id: int, flag_id: int) -> FeatureFlag | None:
    flag = await session.get(FeatureFlag, flag_id)
    return flag if flag is not None and flag.team_id == team_id else None


async def live_flag_by_key(session: AsyncSession, team_id: int, key: str) -> FeatureFlag | None:
    result = await session.exec(
        select(FeatureFlag).where(
            FeatureFlag.team_id == team_id, FeatureFlag.key == key, col(FeatureFlag.deleted).is_(False)
        )
    )
    return result.first()


async def any_flag_by_key(session: AsyncSession, team_id: int, key: str) -> FeatureFlag | None:
    """Live flag first, else the newest deleted one (upstream's lookup sees deleted flags too)."""
    live = await live_flag_by_key(session, team_id, key)
    if live is not None:
        return live
    result = await session.exec(
        select(FeatureFlag)
        .where(FeatureFlag.team_id == team_id, FeatureFlag.key == key)
        .order_by(col(FeatureFlag.id).desc())
    )
    return result.first()


async def list_flags(
    session: AsyncSession,
    team_id: int,
    *,
    search: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[FeatureFlag]]:
    query = select(FeatureFlag).where(FeatureFlag.team_id == team_id, col(FeatureFlag.deleted).is_(False))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(func.lower(FeatureFlag.key).like(pattern), func.lower(FeatureFlag.name).like(pattern))
        )
    if active is not None:
        query = query.where(FeatureFlag.active == active)
    count = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (
        await session.exec(
            query.order_by(col(FeatureFlag.created_at).desc(), col(FeatureFlag.id).desc())
            .offset(offset)
            .limit(limit)
        )
    ).all()
    return count, rows


async def experiment_ids_by_flag(session: AsyncSession, flag_ids: Sequence[int]) -> dict[int, list[int]]:
    """The live experiments of each flag, for a page of flags in one query."""
    out: dict[int, list[int]] = {flag_id: [] for flag_id in flag_ids}
    if not flag_ids:
        return out
    result = await session.exec(
        select(Experiment.feature_flag_id, Experiment.id)
        .where(col(Experiment.feature_flag_id).in_(list(flag_ids)), col(Experiment.deleted).is_(False))
        .order_by(col(Experiment.id))
    )
    for flag_id, experiment_id in result.all():
        if experiment_id is not None:
            out.setdefault(flag_id, []).append(experiment_id)
    return out


async def experiment_ids_for_flag(session: AsyncSession, flag_id: int) -> list[int]:
    result = await session.exec(
        select(Experiment.id).where(Experiment.feature_flag_id == flag_id, col(Experiment.deleted).is_(False))
    )
    return [i for i in result.all() if i is not None]
