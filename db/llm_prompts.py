"""Queries for versioned LLM prompts. Helpers never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import String, cast, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from db.tables import LLMPrompt

LIST_ORDERINGS = ("name", "created_at", "updated_at", "version")


@dataclass(frozen=True)
class VersionSummary:
    latest_version: int
    version_count: int
    first_version_created_at: datetime


def _live(team_id: int, name: str | None = None) -> SelectOfScalar[LLMPrompt]:
    query = select(LLMPrompt).where(LLMPrompt.team_id == team_id, col(LLMPrompt.deleted).is_(False))
    return query.where(LLMPrompt.name == name) if name is not None else query


async def latest_version(session: AsyncSession, team_id: int, name: str) -> LLMPrompt | None:
    rows = await session.exec(_live(team_id, name).order_by(col(LLMPrompt.version).desc()).limit(1))
    return rows.first()


async def prompt_version(session: AsyncSession, team_id: int, name: str, version: int) -> LLMPrompt | None:
    return (await session.exec(_live(team_id, name).where(LLMPrompt.version == version))).first()


async def prompt_by_id(session: AsyncSession, team_id: int, prompt_id: str) -> LLMPrompt | None:
    prompt = await session.get(LLMPrompt, prompt_id)
    return prompt if prompt is not None and prompt.team_id == team_id and not prompt.deleted else None


async def existing_versions(
    session: AsyncSession, team_id: int, name: str, versions: Sequence[int]
) -> set[int]:
    rows = await session.exec(
        select(LLMPrompt.version).where(
            LLMPrompt.team_id == team_id,
            LLMPrompt.name == name,
            col(LLMPrompt.version).in_(list(versions)),
            col(LLMPrompt.deleted).is_(False),
        )
    )
    return set(rows.all())


async def version_summary(session: AsyncSession, team_id: int, name: str) -> VersionSummary | None:
    return (await version_summaries(session, team_id, [name])).get(name)


async def version_summaries(
    session: AsyncSession, team_id: int, names: Sequence[str]
) -> dict[str, VersionSummary]:
    """The version history summary of each named prompt, for a page of prompts in one query."""
    if not names:
        return {}
    rows = (
        await session.exec(
            select(LLMPrompt.name, func.max(LLMPrompt.version), func.count(), func.min(LLMPrompt.created_at))
            .where(
                LLMPrompt.team_id == team_id,
                col(LLMPrompt.name).in_(sorted(set(names))),
                col(LLMPrompt.deleted).is_(False),
            )
            .group_by(col(LLMPrompt.name))
        )
    ).all()
    out = {}
    for name, latest, count, earliest in rows:
        first = earliest if isinstance(earliest, datetime) else datetime.fromisoformat(str(earliest))
        first = first if first.tzinfo else first.replace(tzinfo=UTC)
        out[name] = VersionSummary(
            latest_version=int(latest), version_count=int(count), first_version_created_at=first
        )
    return out


async def list_latest(
    session: AsyncSession, team_id: int, *, search: str | None, order: str, limit: int, offset: int
) -> tuple[int, Sequence[LLMPrompt]]:
    query = _live(team_id).where(col(LLMPrompt.is_latest).is_(True))
    if search:
        pattern = f"%{search.lower()}%"
        query = query.where(
            or_(
                func.lower(LLMPrompt.name).like(pattern),
                func.lower(cast(LLMPrompt.prompt, String)).like(pattern),
            )
        )
    count = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    field = order.lstrip("-")
    column = col(getattr(LLMPrompt, field if field in LIST_ORDERINGS else "created_at"))
    ordering = column.desc() if order.startswith("-") or field not in LIST_ORDERINGS else column.asc()
    rows = (
        await session.exec(query.order_by(ordering, col(LLMPrompt.id).desc()).offset(offset).limit(limit))
    ).all()
    return count, rows
