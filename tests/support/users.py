"""Extra users (with their own personal API keys) in the bootstrap organization."""

from __future__ import annotations

import uuid

from db.accounts import create_personal_key
from db.engine import make_async_engine, make_sessionmaker
from db.tables import Project, User
from domain.keys import new_personal_api_key
from settings import Settings


async def make_user(
    settings: Settings,
    project_id: int,
    *,
    scopes: list[str] | None = None,
    scoped_organizations: list[str] | None = None,
) -> tuple[int, str]:
    """(user id, personal API key) of a new member of the project's organization; the key's
    `scoped_organizations` are written as given, unchecked (as older data may hold them)."""
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            project = await session.get(Project, project_id)
            assert project is not None
            user = User(
                uuid=str(uuid.uuid4()),
                distinct_id=str(uuid.uuid4()),
                organization_id=project.organization_id,
                current_project_id=project_id,
                email=f"{uuid.uuid4().hex[:8]}@flagship.local",
                first_name="Approver",
            )
            session.add(user)
            await session.flush()
            assert user.id is not None
            key = new_personal_api_key()
            await create_personal_key(
                session,
                user.id,
                value=key,
                label="test",
                scopes=scopes or ["*"],
                scoped_organizations=scoped_organizations,
            )
            await session.commit()
            return user.id, key
    finally:
        await engine.dispose()


async def make_other_organization(settings: Settings) -> tuple[int, str]:
    """A second organization with its own project, user and key: (project id, its user's key)."""
    from db.accounts import create_project
    from db.tables import Organization

    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            org = Organization(id=str(uuid.uuid4()), name="Elsewhere Inc")
            session.add(org)
            await session.flush()
            project = await create_project(session, org.id, "Their project")
            assert project.id is not None
            user = User(
                uuid=str(uuid.uuid4()),
                distinct_id=str(uuid.uuid4()),
                organization_id=org.id,
                current_project_id=project.id,
                email=f"{uuid.uuid4().hex[:8]}@elsewhere.test",
            )
            session.add(user)
            await session.flush()
            assert user.id is not None
            key = new_personal_api_key()
            await create_personal_key(session, user.id, value=key, label="theirs", scopes=["*"])
            await session.commit()
            return project.id, key
    finally:
        await engine.dispose()
