"""Queries for cohorts and the members of exposure cohorts. Helpers never commit."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Action, Cohort, Event, Experiment

# Rows fetched per round trip while scanning exposure events: bounded memory on large projects.
SCAN_BATCH = 2000


async def cohort_by_id(session: AsyncSession, team_id: int, cohort_id: int) -> Cohort | None:
    cohort = await session.get(Cohort, cohort_id)
    return cohort if cohort is not None and cohort.team_id == team_id else None


async def list_cohorts(
    session: AsyncSession, team_id: int, *, limit: int, offset: int
) -> tuple[int, Sequence[Cohort]]:
    base = select(Cohort).where(Cohort.team_id == team_id, col(Cohort.deleted).is_(False))
    count = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
    rows = (
        await session.exec(
            base.order_by(col(Cohort.created_at).desc(), col(Cohort.id).desc()).offset(offset).limit(limit)
        )
    ).all()
    return count, rows


async def experiments_with_cohort(session: AsyncSession, team_id: int, cohort_id: int) -> list[int]:
    result = await session.exec(
        select(Experiment.id)
        .where(Experiment.team_id == team_id, Experiment.exposure_cohort_id == cohort_id)
        .order_by(col(Experiment.id))
    )
    return [i for i in result.all() if i is not None]


async def action_event_names(session: AsyncSession, team_id: int, action_id: int) -> list[str]:
    """The events an action's steps match (a step without an event is skipped, as upstream)."""
    action = await session.get(Action, action_id)
    if action is None or action.team_id != team_id or action.deleted:
        return []
    return sorted({step["event"] for step in action.steps if isinstance(step, dict) and step.get("event")})


async def first_seen_distinct_ids(
    session: AsyncSession,
    team_id: int,
    event_names: Sequence[str],
    since: datetime | None,
    matches: Callable[[Mapping[str, Any]], bool],
) -> list[str]:
    """Distinct ids with a matching event, in the order they were first seen."""
    if not event_names:
        return []
    query = select(Event.distinct_id, Event.properties).where(
        Event.team_id == team_id, col(Event.event).in_(list(event_names))
    )
    if since is not None:
        query = query.where(col(Event.timestamp) >= since)
    query = query.order_by(col(Event.timestamp), col(Event.id)).execution_options(yield_per=SCAN_BATCH)
    seen: dict[str, None] = {}
    stream = await session.stream(query)
    async for distinct_id, properties in stream:
        if distinct_id not in seen and matches(properties or {}):
            seen[distinct_id] = None
    return list(seen)
