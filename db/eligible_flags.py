"""Candidate flags for `eligible_feature_flags/`: the SQL-side filters. Helpers never commit.

The variant predicate itself (domain.flag_eligibility) runs on the rows: JSON-array inspection is
not portable between SQLite and PostgreSQL, and a project's flag count is modest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import FeatureFlag


@dataclass(frozen=True)
class FlagFilters:
    search: str | None = None
    active: bool | None = None
    created_by_id: int | None = None
    evaluation_runtime: str | None = None
    order: str = "-created_at"


async def candidate_flags(session: AsyncSession, team_id: int, filters: FlagFilters) -> Sequence[FeatureFlag]:
    query = select(FeatureFlag).where(FeatureFlag.team_id == team_id, col(FeatureFlag.deleted).is_(False))
    if filters.search:
        pattern = f"%{filters.search.lower()}%"
        query = query.where(
            or_(func.lower(FeatureFlag.key).like(pattern), func.lower(FeatureFlag.name).like(pattern))
        )
    if filters.active is not None:
        query = query.where(FeatureFlag.active == filters.active)
    if filters.created_by_id is not None:
        query = query.where(FeatureFlag.created_by_id == filters.created_by_id)
    if filters.evaluation_runtime:
        query = query.where(FeatureFlag.evaluation_runtime == filters.evaluation_runtime)
    field = getattr(FeatureFlag, filters.order.lstrip("-"))
    ordering = col(field).desc() if filters.order.startswith("-") else col(field).asc()
    return (await session.exec(query.order_by(ordering, col(FeatureFlag.id).desc()))).all()
