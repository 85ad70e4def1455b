"""`/api/projects/{project_id}/llm_prompts/`: versioned prompts (scope `llm_prompt`).

POST creates version 1; `PATCH name/{name}/` publishes the next version on top of `base_version`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import not_found
from api.experiments import llm_prompts as service
from api.experiments.fields import check_body_is_object
from api.render import page_params, paginated
from api.routes.common import RawBody
from api.routing import FlexRouter
from db import llm_prompts as queries
from domain.errors import ValidationFailed

router = FlexRouter(tags=["llm prompts"])

READ = Depends(ProjectAuth("llm_prompt:read"))
WRITE = Depends(ProjectAuth("llm_prompt:write"))


@router.get("/llm_prompts/", summary="The latest version of each prompt")
async def list_(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await queries.list_latest(
        session,
        ctx.project_id,
        search=(request.query_params.get("search") or "").strip() or None,
        order=request.query_params.get("order_by") or "-created_at",
        limit=limit,
        offset=offset,
    )
    return paginated(request, count, await service.prompts_out(session, rows), limit, offset)


@router.post("/llm_prompts/", status_code=201, summary="Create a prompt (version 1)")
async def create(body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep) -> dict[str, Any]:
    prompt = await service.create_prompt(session, ctx, check_body_is_object(body))
    return await service.prompt_out(session, prompt)


def _version(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationFailed("A valid integer is required.", attr="version")
    return int(raw)


@router.get("/llm_prompts/name/{name}/", summary="A prompt by name (latest, or `?version=`)")
async def get_by_name(
    request: Request, name: str, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    version = _version(request.query_params.get("version"))
    prompt = (
        await queries.prompt_version(session, ctx.project_id, name, version)
        if version is not None
        else await queries.latest_version(session, ctx.project_id, name)
    )
    if prompt is None:
        raise service.not_found(name)
    return await service.public_out(session, prompt)


@router.patch("/llm_prompts/name/{name}/", summary="Publish the next version of a prompt")
async def publish(
    name: str, body: RawBody, ctx: Annotated[ProjectContext, WRITE], session: SessionDep
) -> dict[str, Any]:
    prompt = await service.publish_version(session, ctx, name, check_body_is_object(body))
    return await service.prompt_out(session, prompt)


@router.get("/llm_prompts/{prompt_id}/", summary="One prompt version by id")
async def retrieve(
    prompt_id: str, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    prompt = await queries.prompt_by_id(session, ctx.project_id, prompt_id)
    if prompt is None:
        raise not_found()
    return await service.prompt_out(session, prompt)
