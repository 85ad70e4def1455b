"""Queries for event definitions and actions (metric validation looks names and ids up here)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Action, EventDefinition


async def known_event_names(session: AsyncSession, team_id: int, names: Iterable[str]) -> set[str]:
    wanted = list(set(names))
    if not wanted:
        return set()
    result = await session.exec(
        select(EventDefinition.name).where(
            EventDefinition.team_id == team_id, col(EventDefinition.name).in_(wanted)
        )
    )
    return set(result.all())


async def existing_action_ids(session: AsyncSession, team_id: int, ids: Iterable[int]) -> set[int]:
    wanted = list(set(ids))
    if not wanted:
        return set()
    result = await session.exec(
        select(Action.id).where(
            Action.team_id == team_id, col(Action.id).in_(wanted), col(Action.deleted).is_(False)
        )
    )
    return {i for i in result.all() if i is not None}
