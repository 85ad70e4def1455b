"""Request dependencies: database session, authentication, scopes and project access.

Auth follows PostHog (posthog-clients.md §6): a personal API key from `Authorization: Bearer phx_…`,
the `personal_api_key` body field or query param; a project secret key (`phs_…`) where allowed.
Every protected route declares the scope it needs with `Auth("object:action")`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import authentication_failed, not_authenticated, not_found, permission_denied
from db import accounts
from db.tables import PersonalAPIKey, Project, User
from domain.keys import PERSONAL_KEY_PREFIX, PROJECT_SECRET_PREFIX, scopes_allow
from settings import Settings


async def get_settings(request: Request) -> Settings:  # async: no threadpool hop
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: helpers never commit, the route does (Polar's rule)."""
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with maker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass
class Principal:
    """Who is calling: a user through a personal key, or a project through its secret key."""

    user: User | None
    key: PersonalAPIKey | None
    secret_project: Project | None = None
    _user_id: int | None = None

    def __post_init__(self) -> None:
        self._user_id = self.user.id if self.user else None

    @property
    def scopes(self) -> list[str]:
        if self.key is not None:
            return list(self.key.scopes)
        return ["experiment:read", "feature_flag:read"]

    @property
    def user_id(self) -> int | None:
        return self._user_id


async def _body_field(request: Request, name: str) -> str | None:
    if request.method in ("GET", "HEAD", "DELETE", "OPTIONS"):
        return None
    if "json" not in request.headers.get("content-type", ""):
        return None
    try:
        data: Any = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


async def _find_credential(request: Request) -> tuple[str, str] | None:
    """(value, where) of the first credential present, in PostHog's order."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip(), "Authorization header"
    body_key = await _body_field(request, "personal_api_key")
    if body_key:
        return body_key, "body"
    query_key = request.query_params.get("personal_api_key")
    if query_key:
        return query_key, "query string"
    secret = await _body_field(request, "secret_api_key")
    if secret:
        return secret, "body"
    return None


async def authenticate(request: Request, session: AsyncSession, project_id: int | None = None) -> Principal:
    """`project_id`: the project the request is for, read with a personal key in the same query."""
    found = await _find_credential(request)
    if found is None:
        raise not_authenticated()
    value, where = found
    if value.startswith(PROJECT_SECRET_PREFIX):
        project = await accounts.project_by_secret(session, value)
        if project is None:
            raise authentication_failed("Project secret API key is invalid.")
        return Principal(user=None, key=None, secret_project=project)
    found_key = (
        await accounts.key_with_user(session, value, project_id)
        if value.startswith(PERSONAL_KEY_PREFIX)
        else None
    )
    if found_key is None:  # no such key, or its user is gone
        raise authentication_failed(f"Personal API key found in request {where} is invalid.")
    key, user = found_key
    if await accounts.touch_key(session, key):
        await session.commit()
    return Principal(user=user, key=key)


def check_scope(principal: Principal, scope: str | None, *, secret_allowed: bool) -> None:
    if principal.secret_project is not None and not secret_allowed:
        raise permission_denied("This action does not support Project Secret API Key access")
    if scope is None:
        return  # any valid credential: the key's own introspection, the current user
    if not scopes_allow(principal.scopes, scope):
        raise permission_denied(f"API key missing required scope '{scope}'")


class Auth:
    """`Depends(Auth("experiment:write"))`: authenticate and check one scope."""

    def __init__(self, scope: str | None, *, secret_allowed: bool = False) -> None:
        self.scope = scope
        self.secret_allowed = secret_allowed

    async def __call__(self, request: Request, session: SessionDep) -> Principal:
        return await self.check(request, session)

    async def check(
        self, request: Request, session: AsyncSession, project_id: int | None = None
    ) -> Principal:
        principal = await authenticate(request, session, project_id)
        check_scope(principal, self.scope, secret_allowed=self.secret_allowed)
        return principal


async def resolve_project(session: AsyncSession, principal: Principal, raw_id: str) -> Project:
    """The project of the path, if this caller may see it (403 for another org's, 404 if absent)."""
    if raw_id == "@current":
        project_id = _current_project_id(principal)
    else:
        try:
            project_id = int(raw_id)
        except ValueError:
            raise not_found() from None
    project = await accounts.project_by_id(session, project_id)
    if project is None:
        raise not_found()
    if principal.secret_project is not None:
        if principal.secret_project.id != project.id:
            raise permission_denied("You don't have access to the project.")
        return project
    key = principal.key
    if key is not None and key.scoped_teams and project.id not in key.scoped_teams:
        raise permission_denied(f"API key does not have access to the requested project: ID {project.id}.")
    check_organization_scope(principal, project.organization_id)
    if principal.user is None or principal.user.organization_id != project.organization_id:
        raise permission_denied("You don't have access to the project.")
    return project


def check_organization_scope(principal: Principal, organization_id: str) -> None:
    """A key's `scoped_organizations` (PostHog's APIScopePermission): only those organizations."""
    key = principal.key
    if key is not None and key.scoped_organizations and organization_id not in key.scoped_organizations:
        raise permission_denied(
            f"API key does not have access to the requested organization: ID {organization_id}."
        )


def _current_project_id(principal: Principal) -> int:
    if principal.secret_project is not None and principal.secret_project.id is not None:
        return principal.secret_project.id
    if principal.key is not None and principal.key.scoped_teams and len(principal.key.scoped_teams) == 1:
        return principal.key.scoped_teams[0]
    if principal.user is not None and principal.user.current_project_id is not None:
        return principal.user.current_project_id
    raise not_found()


@dataclass
class ProjectContext:
    principal: Principal
    project: Project
    # Plain values captured up front: ORM attributes may be expired after a commit, and an
    # async session cannot lazy-load them.
    project_id: int = 0
    project_timezone: str = "UTC"


def plain_project_id(raw: str) -> int | None:
    """A path id that can be looked up as it is (not `@current`, not past a 64-bit integer)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None


class ProjectAuth:
    """`Depends(ProjectAuth("feature_flag:read"))` for routes under /api/projects/{project_id}/."""

    def __init__(self, scope: str | None, *, secret_allowed: bool = False) -> None:
        self.auth = Auth(scope, secret_allowed=secret_allowed)

    async def __call__(
        self,
        request: Request,
        session: SessionDep,
        project_id: Annotated[str, Path(description="Project id, or `@current`.")],
    ) -> ProjectContext:
        principal = await self.auth.check(request, session, plain_project_id(project_id))
        project = await resolve_project(session, principal, project_id)
        assert project.id is not None
        return ProjectContext(
            principal=principal, project=project, project_id=project.id, project_timezone=project.timezone
        )
