"""Feature flags as the flags API lists them, a page at a time (creators and linked experiments in
one query each, not one per flag)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.schemas.flags import flag_out
from db import accounts
from db import flags as flag_queries
from db.tables import FeatureFlag


async def render_flags(session: AsyncSession, flags: Sequence[FeatureFlag]) -> list[dict[str, Any]]:
    await accounts.preload_users(session, [flag.created_by_id for flag in flags])
    experiments = await flag_queries.experiment_ids_by_flag(
        session, [flag.id for flag in flags if flag.id is not None]
    )
    out = []
    for flag in flags:
        creator = await accounts.user_by_id(session, flag.created_by_id) if flag.created_by_id else None
        out.append(flag_out(flag, creator, experiments.get(flag.id or 0, [])))
    return out


async def render_flag(session: AsyncSession, flag: FeatureFlag) -> dict[str, Any]:
    return (await render_flags(session, [flag]))[0]
