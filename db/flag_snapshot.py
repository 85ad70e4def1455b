"""What the in-memory flag cache of the API (api/flag_cache.py) reads: cheap change markers, then the
flags and group types of the projects whose marker moved. Read-only; helpers never commit."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Experiment, FeatureFlag, GroupTypeMapping, Project

# Every flag write bumps `version` and `updated_at` (API and activities), and soft deletes are writes, so
# (count, max(updated_at), sum(version)) changes whenever any flag of the project does.
FlagMarker = tuple[Any, ...]


async def project_tokens(session: AsyncSession) -> list[tuple[int, str, str | None]]:
    result = await session.exec(select(Project.id, Project.api_token, Project.secret_api_token))
    return [(int(pid), token, secret) for pid, token, secret in result.all() if pid is not None]


async def project_keys_by_token(session: AsyncSession, token: str) -> tuple[int, str | None] | None:
    """(project id, secret token) of the project whose public token this is, if any."""
    result = await session.exec(
        select(Project.id, Project.secret_api_token).where(Project.api_token == token)
    )
    row = result.first()
    if row is None or row[0] is None:
        return None
    return int(row[0]), row[1]


async def flag_markers(session: AsyncSession) -> dict[int, FlagMarker]:
    flag_rows = await session.exec(
        select(
            FeatureFlag.team_id, func.count(), func.max(FeatureFlag.updated_at), func.sum(FeatureFlag.version)
        ).group_by(col(FeatureFlag.team_id))
    )
    markers: dict[int, FlagMarker] = {int(team): tuple(rest) for team, *rest in flag_rows.all()}
    group_rows = await session.exec(
        select(GroupTypeMapping.team_id, func.count()).group_by(col(GroupTypeMapping.team_id))
    )
    for team, count in group_rows.all():
        markers[int(team)] = (*markers.get(int(team), ()), "groups", count)
    # Linking or unlinking an experiment changes a flag's `has_experiment` without touching the flag.
    experiment_rows = await session.exec(
        select(Experiment.team_id, func.count(), func.max(Experiment.updated_at))
        .where(col(Experiment.deleted).is_(False))
        .group_by(col(Experiment.team_id))
    )
    for team, count, latest in experiment_rows.all():
        markers[int(team)] = (*markers.get(int(team), ()), "experiments", count, latest)
    return markers


async def live_flags(session: AsyncSession, team_ids: Collection[int]) -> Sequence[FeatureFlag]:
    """Every flag not deleted (inactive ones too: local evaluation lists them), in creation order."""
    result = await session.exec(
        select(FeatureFlag)
        .where(col(FeatureFlag.team_id).in_(list(team_ids)), col(FeatureFlag.deleted).is_(False))
        .order_by(col(FeatureFlag.id))
    )
    return result.all()


async def flags_with_experiments(session: AsyncSession, team_ids: Collection[int]) -> set[int]:
    """Ids of the flags an experiment (not deleted) uses: `/flags` metadata `has_experiment`."""
    result = await session.exec(
        select(Experiment.feature_flag_id)
        .where(col(Experiment.team_id).in_(list(team_ids)), col(Experiment.deleted).is_(False))
        .distinct()
    )
    return {int(flag_id) for flag_id in result.all() if flag_id is not None}


async def group_type_mappings(session: AsyncSession, team_ids: Collection[int]) -> dict[int, dict[str, int]]:
    result = await session.exec(
        select(
            GroupTypeMapping.team_id, GroupTypeMapping.group_type, GroupTypeMapping.group_type_index
        ).where(col(GroupTypeMapping.team_id).in_(list(team_ids)))
    )
    mappings: dict[int, dict[str, int]] = {team: {} for team in team_ids}
    for team, name, index in result.all():
        mappings[team][name] = index
    return mappings
