"""Read-only aggregates behind `stats/` and `requires_flag_implementation/`. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Action, Event, Experiment


async def count_experiments(
    session: AsyncSession,
    team_id: int,
    *,
    column: str,
    start: datetime | None = None,
    end: datetime | None = None,
    active_only: bool = False,
) -> int:
    """Non-deleted, non-archived experiments whose `column` (start_date/end_date) is in [start, end)."""
    attribute = getattr(Experiment, column)
    query = select(func.count()).where(
        Experiment.team_id == team_id,
        col(Experiment.deleted).is_(False),
        col(Experiment.archived).is_(False),
    )
    if start is not None:
        query = query.where(attribute >= start)
    if end is not None:
        query = query.where(attribute < end)
    if active_only:
        query = query.where(col(Experiment.start_date).is_not(None), col(Experiment.end_date).is_(None))
    return int((await session.exec(query)).one())


async def step_event_names(session: AsyncSession, team_id: int, action_ids: Sequence[int]) -> set[str]:
    if not action_ids:
        return set()
    actions = (
        await session.exec(
            select(Action).where(Action.team_id == team_id, col(Action.id).in_(list(action_ids)))
        )
    ).all()
    return {
        step["event"]
        for action in actions
        for step in action.steps
        if isinstance(step, dict) and step.get("event")
    }


async def recent_properties(
    session: AsyncSession, team_id: int, event: str, since: datetime, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` property sets of the newest `event` events since `since`."""
    rows = await session.exec(
        select(Event.properties)
        .where(Event.team_id == team_id, Event.event == event, col(Event.timestamp) >= since)
        .order_by(col(Event.timestamp).desc())
        .limit(limit)
    )
    return [dict(row or {}) for row in rows.all()]
