"""Queries for organizations, projects, users and personal API keys. Helpers never commit."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import Organization, PersonalAPIKey, Project, User
from db.types import utcnow
from domain.keys import hash_key, mask_key, new_project_secret, new_project_token, random_token

# last_used_at is advisory; writing it on every request would turn each read into a write.
LAST_USED_RESOLUTION = timedelta(hours=1)


async def key_by_value(session: AsyncSession, value: str) -> PersonalAPIKey | None:
    result = await session.exec(select(PersonalAPIKey).where(PersonalAPIKey.secure_value == hash_key(value)))
    return result.first()


async def key_with_user(
    session: AsyncSession, value: str, project_id: int | None = None
) -> tuple[PersonalAPIKey, User] | None:
    """The key with this value and its owner, in one query (every authenticated request runs it).

    `project_id`: the project the request is for, loaded by the same query into the session, where
    `project_by_id` then finds it without another round trip."""
    query: Any = select(PersonalAPIKey, User)
    if project_id is not None:
        query = select(PersonalAPIKey, User, Project).outerjoin(Project, col(Project.id) == project_id)
    query = (
        query.select_from(PersonalAPIKey)
        .join(User, col(User.id) == col(PersonalAPIKey.user_id))
        .where(PersonalAPIKey.secure_value == hash_key(value))
    )
    row = (await session.exec(query)).first()
    return (row[0], row[1]) if row is not None else None


async def touch_key(session: AsyncSession, key: PersonalAPIKey) -> bool:
    now = utcnow()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return False
    key.last_used_at = now
    session.add(key)
    return True


async def user_by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def preload_users(session: AsyncSession, user_ids: Iterable[int | None]) -> dict[int, User]:
    """Load these users into the session in one query: a page's renderers then find each creator
    with `user_by_id` (the session's identity map) instead of one query per row. The identity map
    holds objects weakly, so the session's `info` keeps them for as long as the session lives."""
    ids = sorted({user_id for user_id in user_ids if user_id is not None})
    if not ids:
        return {}
    users = (await session.exec(select(User).where(col(User.id).in_(ids)))).all()
    loaded = {user.id: user for user in users if user.id is not None}
    session.info.setdefault("preloaded_users", []).append(loaded)
    return loaded


async def project_by_id(session: AsyncSession, project_id: int) -> Project | None:
    return await session.get(Project, project_id)


async def project_by_token(session: AsyncSession, token: str) -> Project | None:
    result = await session.exec(select(Project).where(Project.api_token == token))
    return result.first()


async def project_by_secret(session: AsyncSession, secret: str) -> Project | None:
    result = await session.exec(select(Project).where(Project.secret_api_token == secret))
    return result.first()


async def projects_of_org(
    session: AsyncSession, org_id: str, *, limit: int, offset: int
) -> tuple[int, Sequence[Project]]:
    base = select(Project).where(Project.organization_id == org_id)
    count = (await session.exec(select(func.count()).select_from(base.subquery()))).one()
    rows = (await session.exec(base.order_by(col(Project.id)).offset(offset).limit(limit))).all()
    return count, rows


async def organization_by_id(session: AsyncSession, org_id: str) -> Organization | None:
    return await session.get(Organization, org_id)


async def create_project(session: AsyncSession, org_id: str, name: str, token: str | None = None) -> Project:
    project = Project(
        organization_id=org_id,
        name=name,
        api_token=token or new_project_token(),
        secret_api_token=new_project_secret(),
    )
    session.add(project)
    await session.flush()
    return project


async def keys_of_user(session: AsyncSession, user_id: int) -> Sequence[PersonalAPIKey]:
    result = await session.exec(
        select(PersonalAPIKey)
        .where(PersonalAPIKey.user_id == user_id)
        .order_by(col(PersonalAPIKey.created_at).desc())
    )
    return result.all()


async def create_personal_key(
    session: AsyncSession,
    user_id: int,
    *,
    value: str,
    label: str,
    scopes: list[str],
    scoped_teams: list[int] | None = None,
    scoped_organizations: list[str] | None = None,
) -> PersonalAPIKey:
    key = PersonalAPIKey(
        id=random_token(16),
        user_id=user_id,
        label=label,
        secure_value=hash_key(value),
        mask_value=mask_key(value),
        scopes=scopes,
        scoped_teams=scoped_teams,
        scoped_organizations=scoped_organizations,
    )
    session.add(key)
    await session.flush()
    return key


def new_uuid() -> str:
    return str(uuid.uuid4())
