"""`/api/projects/{project_id}/experiment_saved_metrics/`: CRUD (reference §7, scope `experiment`).

Ordered by `lower(name)`. Deleting one unlinks it from every experiment through their workflows.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found
from api.experiments import saved_metrics as service
from api.experiments.fields import check_body_is_object
from api.render import page_params, paginated
from api.routes.common import RawBody, TemporalDep
from api.routing import FlexRouter
from db import accounts
from db.saved_metrics import list_saved_metrics, saved_metric_by_id
from db.tables import ExperimentSavedMetric

router = FlexRouter(tags=["experiment saved metrics"])

READ = Depends(ProjectAuth("experiment:read"))
WRITE = Depends(ProjectAuth("experiment:write"))


async def _get(session: SessionDep, ctx: ProjectContext, metric_id: int) -> ExperimentSavedMetric:
    metric = await saved_metric_by_id(session, ctx.project_id, metric_id)
    if metric is None:
        raise not_found()
    return metric


@router.get("/experiment_saved_metrics/", summary="List saved metrics")
async def list_(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await list_saved_metrics(session, ctx.project_id, limit=limit, offset=offset)
    await accounts.preload_users(session, [row.created_by_id for row in rows])
    results = [await service.saved_metric_out(session, row) for row in rows]
    return paginated(request, count, results, limit, offset)


@router.post("/experiment_saved_metrics/", status_code=201, summary="Create a saved metric")
async def create(body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep) -> dict[str, Any]:
    metric = await service.create_saved_metric(session, ctx, check_body_is_object(body))
    return await service.saved_metric_out(session, metric)


@router.get("/experiment_saved_metrics/{metric_id}/", summary="Retrieve a saved metric")
async def retrieve(
    metric_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    return await service.saved_metric_out(session, await _get(session, ctx, metric_id))


@router.patch("/experiment_saved_metrics/{metric_id}/", summary="Update a saved metric")
async def partial_update(
    metric_id: int, body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep
) -> dict[str, Any]:
    metric = await _get(session, ctx, metric_id)
    updated = await service.update_saved_metric(session, metric, check_body_is_object(body), partial=True)
    return await service.saved_metric_out(session, updated)


@router.put("/experiment_saved_metrics/{metric_id}/", summary="Replace a saved metric")
async def update(
    metric_id: int, body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep
) -> dict[str, Any]:
    metric = await _get(session, ctx, metric_id)
    updated = await service.update_saved_metric(session, metric, check_body_is_object(body), partial=False)
    return await service.saved_metric_out(session, updated)


@router.delete("/experiment_saved_metrics/{metric_id}/", status_code=204, summary="Delete a saved metric")
async def destroy(
    metric_id: int, ctx: Annotated[ProjectContext, WRITE], session: SessionDep, temporal: TemporalDep
) -> Response:
    await service.delete_saved_metric(session, temporal, ctx, await _get(session, ctx, metric_id))
    return Response(status_code=204)
