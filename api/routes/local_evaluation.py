"""Flag definitions for SDK local evaluation: `GET /flags/definitions` (posthog-python ≥ 7.5x, node 5.x)
and `GET /api/feature_flag/local_evaluation/` (older SDKs), posthog-clients.md §4.

Authenticated like the rest of the API (a personal key with `feature_flag:read`, or the project's
secret `phs_` key); `token` names the project. The body comes pre-rendered from the flag cache with a
weak ETag, so a poll with a matching If-None-Match costs a 304 and no serialisation.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from api.deps import SessionDep, authenticate, check_scope, resolve_project
from api.errors import authentication_failed
from api.flag_cache import FlagCache, ProjectFlags
from api.routes.flags_eval import BAD_TOKEN
from api.routing import FlexRouter
from db import accounts
from db.tables import Project

router = FlexRouter(tags=["feature flags"])


async def _project(request: Request, session: SessionDep) -> Project:
    principal = await authenticate(request, session)
    check_scope(principal, "feature_flag:read", secret_allowed=True)
    token = request.query_params.get("token")
    if not token:
        # Older SDKs may omit it: the key's own project, as upstream's @current.
        return await resolve_project(session, principal, "@current")
    cache: FlagCache = request.app.state.flag_cache
    cached = cache.project(token)
    project_id = cached.project_id if cached is not None else None
    if project_id is None:
        found = await accounts.project_by_token(session, token)
        if found is None or found.id is None:
            raise authentication_failed(BAD_TOKEN)
        project_id = found.id
    return await resolve_project(session, principal, str(project_id))


async def _entry(request: Request, project: Project) -> ProjectFlags:
    assert project.id is not None
    cache: FlagCache = request.app.state.flag_cache
    entry = cache.project_by_id(project.id)
    if entry is not None:
        return entry
    # A project created since the last poll: the cache looks it up now (and keeps it).
    entry = await cache.resolve(project.api_token)
    if entry is None:
        raise authentication_failed(BAD_TOKEN)
    return entry


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    # Weak comparison (RFC 9110 §13.1.2): the W/ prefix does not count.
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag.removeprefix("W/") in candidates


async def _definitions(request: Request, session: SessionDep) -> Response:
    project = await _project(request, session)
    entry = await _entry(request, project)
    headers = {"ETag": entry.etag, "Cache-Control": "private, no-cache"}
    if _matches(request.headers.get("if-none-match"), entry.etag):
        return Response(status_code=304, headers=headers)
    return Response(entry.definitions, media_type="application/json", headers=headers)


@router.get("/flags/definitions", summary="Flag definitions for SDK local evaluation")
async def flag_definitions(request: Request, session: SessionDep) -> Response:
    return await _definitions(request, session)


@router.get("/api/feature_flag/local_evaluation/", summary="Flag definitions (older SDKs)")
async def local_evaluation(request: Request, session: SessionDep) -> Response:
    return await _definitions(request, session)
