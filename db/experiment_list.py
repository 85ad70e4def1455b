"""The experiments list query: PostHog's filters and ordering (reference §4.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, FeatureFlag, User

ORDER_FIELDS = (
    "created_at",
    "created_by",
    "updated_at",
    "name",
    "start_date",
    "end_date",
    "duration",
    "status",
)


@dataclass(frozen=True)
class ExperimentFilters:
    status: str | None = None
    archived: str | None = None
    search: str | None = None
    created_by_id: int | None = None
    feature_flag_id: int | None = None
    prompt_name: str | None = None
    order: str = "-created_at"


def _status_clause(status: str) -> Any:
    started = col(Experiment.start_date).is_not(None)
    ended = col(Experiment.end_date).is_not(None)
    running = started & ~ended
    table = {
        "draft": ~started,
        "running": running & col(FeatureFlag.active).is_(True),
        "paused": running & col(FeatureFlag.active).is_(False),
        "stopped": started & ended,
        "complete": started & ended,
    }
    return table.get(status.lower())


def _filtered(team_id: int, filters: ExperimentFilters) -> Any:
    query = (
        select(Experiment, User)
        .join(FeatureFlag, col(FeatureFlag.id) == col(Experiment.feature_flag_id))
        .outerjoin(User, col(User.id) == col(Experiment.created_by_id))
        .where(Experiment.team_id == team_id, col(Experiment.deleted).is_(False))
    )
    if filters.archived is None:
        query = query.where(col(Experiment.archived).is_(False))
    else:
        query = query.where(Experiment.archived == (filters.archived.lower() == "true"))
    clause = _status_clause(filters.status) if filters.status else None
    if clause is not None:
        query = query.where(clause)
    if filters.search:
        query = query.where(func.lower(Experiment.name).like(f"%{filters.search.lower()}%"))
    if filters.created_by_id is not None:
        query = query.where(Experiment.created_by_id == filters.created_by_id)
    if filters.feature_flag_id is not None:
        query = query.where(Experiment.feature_flag_id == filters.feature_flag_id)
    return query


async def list_experiments(
    session: AsyncSession, team_id: int, filters: ExperimentFilters, *, limit: int, offset: int, now: datetime
) -> tuple[int, Sequence[Experiment]]:
    query = _filtered(team_id, filters)
    pairs = list((await session.exec(query)).all())
    if filters.prompt_name:
        pairs = [p for p in pairs if _prompt_name(p[0]) == filters.prompt_name]
    ordered = _sort(pairs, filters.order, now)
    return len(ordered), ordered[offset : offset + limit]


def _prompt_name(row: Experiment) -> Any:
    return ((row.parameters or {}).get("prompt_metadata") or {}).get("name")


def _sort(rows: list[tuple[Experiment, User | None]], order: str, now: datetime) -> list[Experiment]:
    """Sorted in Python: duration and the derived status are awkward to express portably, and a
    project's experiment count is small (hundreds), so this stays cheap."""
    descending = order.startswith("-")
    field = order.lstrip("-")

    valued = [(_sort_value(row, user, field, now), row) for row, user in rows]
    present = [(v, r) for v, r in valued if v is not None]
    missing = [r for v, r in valued if v is None]
    present.sort(key=lambda pair: (pair[0], pair[1].id or 0), reverse=descending)
    # NULLs last in both directions, as PostgreSQL does with NULLS LAST on the upstream queryset.
    return [r for _, r in present] + missing


def _sort_value(row: Experiment, user: User | None, field: str, now: datetime) -> Any:
    if field == "duration":
        if row.start_date is None:
            return None
        return ((row.end_date or now) - row.start_date).total_seconds()
    if field == "status":
        return 0 if row.start_date is None else (1 if row.end_date is None else 2)
    if field == "created_by":
        return None if user is None else (user.first_name or user.email).lower()
    if field == "name":
        return row.name.lower()
    return getattr(row, field)
