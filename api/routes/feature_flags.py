"""`/api/projects/{project_id}/feature_flags/`: list, create, retrieve, PATCH; DELETE is 405."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found
from api.experiments.flag_writes import DUPLICATE_KEY, gate_flag_write, write_flag
from api.flag_render import render_flag, render_flags
from api.render import page_params, paginated, parse_bool_param
from api.routing import FlexRouter
from api.schemas.flags import FeatureFlagCreate, FeatureFlagUpdate
from db import flags as flag_queries
from db.tables import FeatureFlag
from domain.errors import ValidationFailed
from domain.flag_rules import validate_flag_filters, validate_flag_key

router = FlexRouter(tags=["feature flags"])

READ = Depends(ProjectAuth("feature_flag:read"))
WRITE = Depends(ProjectAuth("feature_flag:write"))


async def _ensure_unique_key(session: SessionDep, team_id: int, key: str, flag_id: int | None) -> None:
    existing = await flag_queries.live_flag_by_key(session, team_id, key)
    if existing is not None and existing.id != flag_id:
        raise ValidationFailed(DUPLICATE_KEY, attr="key", code="unique")


@router.get("/feature_flags/", summary="List feature flags")
async def list_flags(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await flag_queries.list_flags(
        session,
        ctx.project_id,
        search=request.query_params.get("search"),
        active=parse_bool_param(request.query_params.get("active")),
        limit=limit,
        offset=offset,
    )
    return paginated(request, count, await render_flags(session, rows), limit, offset)


@router.post("/feature_flags/", status_code=201, summary="Create a feature flag")
async def create_flag(
    body: FeatureFlagCreate, ctx: Annotated[ProjectContext, WRITE], session: SessionDep
) -> dict[str, Any]:
    validate_flag_key(body.key)
    validate_flag_filters(body.filters)
    await _ensure_unique_key(session, ctx.project_id, body.key, None)
    flag = FeatureFlag(
        team_id=ctx.project_id,
        created_by_id=ctx.principal.user_id,
        **body.model_dump(),
    )
    session.add(flag)
    await _commit_unique(session)
    return await render_flag(session, flag)


async def _commit_unique(session: SessionDep) -> None:
    """Two concurrent creates of one key: the database's unique index decides, as a 400."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise ValidationFailed(DUPLICATE_KEY, attr="key", code="unique") from None


async def _get(session: SessionDep, ctx: ProjectContext, flag_id: int) -> FeatureFlag:
    flag = await flag_queries.flag_by_id(session, ctx.project_id, flag_id)
    if flag is None or flag.deleted:
        raise not_found()
    return flag


@router.get("/feature_flags/{flag_id}/", summary="Retrieve a feature flag")
async def get_flag(flag_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep) -> dict[str, Any]:
    return await render_flag(session, await _get(session, ctx, flag_id))


@router.patch("/feature_flags/{flag_id}/", summary="Update a feature flag (soft delete with deleted=true)")
async def update_flag(
    flag_id: int,
    body: FeatureFlagUpdate,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    request: Request,
) -> dict[str, Any]:
    flag = await flag_queries.flag_by_id(session, ctx.project_id, flag_id)
    if flag is None or (flag.deleted and ("deleted" not in body.model_fields_set or body.deleted)):
        raise not_found()
    changes = body.model_dump(exclude_unset=True)
    if "key" in changes:
        validate_flag_key(changes["key"])
        await _ensure_unique_key(session, ctx.project_id, changes["key"], flag.id)
    if "filters" in changes:
        validate_flag_filters(changes["filters"])
    await gate_flag_write(session, ctx, flag, changes)
    flag = await write_flag(session, request.app.state.temporal, ctx, flag, changes)
    return await render_flag(session, flag)


@router.delete("/feature_flags/{flag_id}/", status_code=405, summary="Hard delete is not allowed")
async def delete_flag(flag_id: int, ctx: Annotated[ProjectContext, WRITE]) -> Response:
    """Hard delete is not allowed: PATCH `{"deleted": true}` instead (PostHog's ForbidDestroyModel)."""
    return Response(status_code=405)
