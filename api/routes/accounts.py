"""Users, personal API keys and projects (PostHog paths and shapes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import Auth, Principal, SessionDep, check_organization_scope, resolve_project
from api.errors import not_found, permission_denied
from api.render import bad_request, page_params, paginated
from api.routing import FlexRouter
from api.schemas.accounts import (
    PersonalAPIKeyCreate,
    ProjectCreate,
    organization_out,
    personal_key_out,
    project_out,
    team_basic,
)
from db import accounts
from db.tables import PersonalAPIKey
from domain.keys import is_valid_scope, new_personal_api_key, restriction_within, scope_not_granted

router = FlexRouter(tags=["accounts"])


def _require_user(principal: Principal) -> Any:
    if principal.user is None:
        raise permission_denied("This action does not support Project Secret API Key access")
    return principal.user


@router.get("/api/users/@me/", summary="The calling user")
async def me(principal: Annotated[Principal, Depends(Auth(None))], session: SessionDep) -> dict[str, Any]:
    user = _require_user(principal)
    org = await accounts.organization_by_id(session, user.organization_id)
    assert org is not None
    project = (
        await accounts.project_by_id(session, user.current_project_id) if user.current_project_id else None
    )
    org_out = organization_out(org)
    return {
        "id": user.id,
        "uuid": user.uuid,
        "distinct_id": user.distinct_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_email_verified": user.is_email_verified,
        "organization": org_out,
        "organizations": [org_out],
        "team": team_basic(project) if project else None,
        "scopes": principal.scopes,
    }


@router.get("/api/personal_api_keys/", summary="List your personal API keys")
async def list_keys(
    principal: Annotated[Principal, Depends(Auth("personal_api_key:read"))], session: SessionDep
) -> list[dict[str, Any]]:
    user = _require_user(principal)
    return [personal_key_out(k) for k in await accounts.keys_of_user(session, user.id)]


@router.get("/api/personal_api_keys/@current", summary="The key making this request")
async def current_key(principal: Annotated[Principal, Depends(Auth(None))]) -> dict[str, Any]:
    if principal.key is None:
        raise not_found()
    return personal_key_out(principal.key)


@router.post("/api/personal_api_keys/", status_code=201, summary="Create a personal API key")
async def create_key(
    body: PersonalAPIKeyCreate,
    principal: Annotated[Principal, Depends(Auth("personal_api_key:write"))],
    session: SessionDep,
) -> dict[str, Any]:
    user = _require_user(principal)
    for scope in body.scopes:
        if not is_valid_scope(scope):
            raise bad_request(f"Invalid scope: {scope}", attr="scopes")
    for team_id in body.scoped_teams or []:
        project = await accounts.project_by_id(session, team_id)
        if project is None or project.organization_id != user.organization_id:
            raise bad_request(
                "You must be a member of all teams that you are scoping the key to.", attr="scoped_teams"
            )
    if any(org_id != user.organization_id for org_id in body.scoped_organizations or []):
        raise bad_request(
            "You must be a member of all organizations that you are scoping the key to.",
            attr="scoped_organizations",
        )
    _check_no_escalation(principal.key, body)
    value = new_personal_api_key()
    key = await accounts.create_personal_key(
        session,
        user.id,
        value=value,
        label=body.label,
        scopes=body.scopes,
        scoped_teams=body.scoped_teams,
        scoped_organizations=body.scoped_organizations,
    )
    await session.commit()
    return personal_key_out(key, value=value)


def _check_no_escalation(key: PersonalAPIKey | None, body: PersonalAPIKeyCreate) -> None:
    """Managing keys with a key is Flagship's extension (PostHog allows it only from a logged-in
    session): the new key may do no more than the key creating it, or a project-scoped key could
    mint an organization-wide `*` one."""
    if key is None:
        return
    scope = scope_not_granted(list(key.scopes), body.scopes)
    if scope is not None:
        raise permission_denied(f"API key cannot create a key with scope '{scope}' that it does not have.")
    if not restriction_within(key.scoped_teams, body.scoped_teams):
        raise permission_denied("API key cannot create a key for projects outside its own scoped_teams.")
    if not restriction_within(key.scoped_organizations, body.scoped_organizations):
        raise permission_denied(
            "API key cannot create a key for organizations outside its own scoped_organizations."
        )


@router.delete("/api/personal_api_keys/{key_id}/", status_code=204, summary="Delete a personal API key")
async def delete_key(
    key_id: str,
    principal: Annotated[Principal, Depends(Auth("personal_api_key:write"))],
    session: SessionDep,
) -> Response:
    user = _require_user(principal)
    key = next((k for k in await accounts.keys_of_user(session, user.id) if k.id == key_id), None)
    if key is None:
        raise not_found()
    await session.delete(key)
    await session.commit()
    return Response(status_code=204)


@router.get("/api/projects/", summary="Projects of your organization")
async def list_projects(
    request: Request,
    principal: Annotated[Principal, Depends(Auth("project:read"))],
    session: SessionDep,
) -> dict[str, Any]:
    user = _require_user(principal)
    check_organization_scope(principal, user.organization_id)
    limit, offset = page_params(request)
    count, rows = await accounts.projects_of_org(session, user.organization_id, limit=limit, offset=offset)
    scoped = principal.key.scoped_teams if principal.key else None
    visible = [project_out(p) for p in rows if not scoped or p.id in scoped]
    return paginated(request, count if not scoped else len(visible), visible, limit, offset)


@router.post("/api/projects/", status_code=201, summary="Create a project in your organization")
async def create_project(
    body: ProjectCreate,
    principal: Annotated[Principal, Depends(Auth("project:write"))],
    session: SessionDep,
) -> dict[str, Any]:
    user = _require_user(principal)
    check_organization_scope(principal, user.organization_id)
    if principal.key is not None and principal.key.scoped_teams:
        # A new project would lie outside the key's own projects (PostHog's rule for org-level views).
        raise permission_denied("API keys with scoped projects are only supported on project-based views.")
    project = await accounts.create_project(session, user.organization_id, body.name)
    project.timezone = body.timezone
    await session.commit()
    return project_out(project)


@router.get("/api/projects/{project_id}/", summary="One project")
async def get_project(
    project_id: str,
    principal: Annotated[Principal, Depends(Auth("project:read"))],
    session: SessionDep,
) -> dict[str, Any]:
    return project_out(await resolve_project(session, principal, project_id))
