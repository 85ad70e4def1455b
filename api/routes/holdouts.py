"""`/api/projects/{project_id}/experiment_holdouts/`: CRUD (reference §6, scope `experiment`).

The holdout row is a plain write; the flags of experiments using it change through their workflows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found
from api.experiments import holdouts as service
from api.experiments.fields import check_body_is_object
from api.experiments.render import holdout_out
from api.render import page_params, paginated
from api.routes.common import RawBody, TemporalDep
from api.routing import FlexRouter
from api.schemas.accounts import user_basic
from db import accounts
from db.experiment_assets import holdout_by_id
from db.holdouts import list_holdouts
from db.tables import ExperimentHoldout

router = FlexRouter(tags=["experiment holdouts"])

READ = Depends(ProjectAuth("experiment:read"))
WRITE = Depends(ProjectAuth("experiment:write"))


async def _render(session: SessionDep, holdout: ExperimentHoldout) -> dict[str, Any]:
    creator = await accounts.user_by_id(session, holdout.created_by_id) if holdout.created_by_id else None
    out = holdout_out(holdout, user_basic(creator))
    assert out is not None
    return out


async def _get(session: SessionDep, ctx: ProjectContext, holdout_id: int) -> ExperimentHoldout:
    holdout = await holdout_by_id(session, ctx.project_id, holdout_id)
    if holdout is None:
        raise not_found()
    return holdout


@router.get("/experiment_holdouts/", summary="List holdouts")
async def list_(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await list_holdouts(session, ctx.project_id, limit=limit, offset=offset)
    await accounts.preload_users(session, [row.created_by_id for row in rows])
    return paginated(request, count, [await _render(session, row) for row in rows], limit, offset)


@router.post("/experiment_holdouts/", status_code=201, summary="Create a holdout")
async def create(body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep) -> dict[str, Any]:
    holdout = await service.create_holdout(session, ctx, check_body_is_object(body))
    return await _render(session, holdout)


@router.get("/experiment_holdouts/{holdout_id}/", summary="Retrieve a holdout")
async def retrieve(
    holdout_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    return await _render(session, await _get(session, ctx, holdout_id))


async def _update(
    holdout_id: int,
    body: Any,
    ctx: ProjectContext,
    session: SessionDep,
    temporal: TemporalDep,
    *,
    partial: bool,
) -> dict[str, Any]:
    holdout = await _get(session, ctx, holdout_id)
    await service.update_holdout(session, temporal, ctx, holdout, check_body_is_object(body), partial=partial)
    return await _render(session, await _get(session, ctx, holdout_id))


@router.patch("/experiment_holdouts/{holdout_id}/", summary="Update a holdout (experiments' flags follow)")
async def partial_update(
    holdout_id: int,
    body: RawBody,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    return await _update(holdout_id, body, ctx, session, temporal, partial=True)


@router.put("/experiment_holdouts/{holdout_id}/", summary="Replace a holdout (experiments' flags follow)")
async def update(
    holdout_id: int,
    body: RawBody,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
) -> dict[str, Any]:
    return await _update(holdout_id, body, ctx, session, temporal, partial=False)


@router.delete("/experiment_holdouts/{holdout_id}/", status_code=204, summary="Delete a holdout")
async def destroy(
    holdout_id: int, ctx: Annotated[ProjectContext, WRITE], session: SessionDep, temporal: TemporalDep
) -> Response:
    await service.delete_holdout(session, temporal, ctx, await _get(session, ctx, holdout_id))
    return Response(status_code=204)
