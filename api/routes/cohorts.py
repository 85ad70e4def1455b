"""`/api/projects/{project_id}/cohorts/`: list, retrieve and the members of a cohort (scope `cohort`).

Cohorts are created by `create_exposure_cohort_for_experiment`; members come from the event store.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found
from api.experiments.cohorts import cohort_members, cohort_out, person_out
from api.render import page_params, paginated
from api.routing import FlexRouter
from db import accounts
from db.cohorts import cohort_by_id, list_cohorts
from db.tables import Cohort

router = FlexRouter(tags=["cohorts"])

READ = Depends(ProjectAuth("cohort:read"))


async def _get(session: SessionDep, ctx: ProjectContext, cohort_id: int) -> Cohort:
    cohort = await cohort_by_id(session, ctx.project_id, cohort_id)
    if cohort is None:
        raise not_found()
    return cohort


@router.get("/cohorts/", summary="List cohorts")
async def list_(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await list_cohorts(session, ctx.project_id, limit=limit, offset=offset)
    await accounts.preload_users(session, [row.created_by_id for row in rows])
    return paginated(request, count, [await cohort_out(session, row) for row in rows], limit, offset)


@router.get("/cohorts/{cohort_id}/", summary="Retrieve a cohort (count computed from the events)")
async def retrieve(
    cohort_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    return await cohort_out(session, await _get(session, ctx, cohort_id))


@router.get("/cohorts/{cohort_id}/persons/", summary="Members of a cohort, first exposed first")
async def persons(
    request: Request, cohort_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    cohort = await _get(session, ctx, cohort_id)
    limit, offset = page_params(request)
    members = await cohort_members(session, cohort) or []
    page = [person_out(ctx.project_id, distinct_id) for distinct_id in members[offset : offset + limit]]
    body = paginated(request, len(members), page, limit, offset)
    return {"results": body["results"], "next": body["next"], "previous": body["previous"]}
