"""Name and key lookups for generated experiment names and flag keys. Helpers never commit."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, FeatureFlag


async def live_names_starting_with(session: AsyncSession, team_id: int, prefix: str) -> set[str]:
    """Names of the team's non-deleted experiments that begin with `prefix` (LIKE-escaped)."""
    result = await session.exec(
        select(Experiment.name).where(
            Experiment.team_id == team_id,
            col(Experiment.deleted).is_(False),
            col(Experiment.name).startswith(prefix, autoescape=True),
        )
    )
    return set(result.all())


async def flag_keys_starting_with(session: AsyncSession, team_id: int, prefix: str) -> set[str]:
    """Keys of the team's flags, deleted ones included (upstream's uniqueness lookup sees them)."""
    result = await session.exec(
        select(FeatureFlag.key).where(
            FeatureFlag.team_id == team_id, col(FeatureFlag.key).startswith(prefix, autoescape=True)
        )
    )
    return set(result.all())
