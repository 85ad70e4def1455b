"""The rest of `/api/projects/{project_id}/experiments/`: duplicate, copy, exposure cohort, eligible
flags, flag-implementation check, velocity stats and prompt experiments.

Registered before api/routes/experiments.py: `/experiments/stats/` must not reach `/{experiment_id}/`.
Every experiment this creates or changes goes through its workflow (api/experiments/create_experiment.py,
api/experiments/commands.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request

from api.deps import ProjectAuth, ProjectContext, SessionDep, check_scope
from api.experiments import commands
from api.experiments.clone import (
    LEGACY_COPY,
    LEGACY_DUPLICATE,
    check_not_legacy,
    clone_body,
    resolve_copy_target,
)
from api.experiments.create_experiment import create_via_workflow
from api.experiments.eligible_flags import eligible_flags
from api.experiments.exposure_cohort import create_exposure_cohort
from api.experiments.fields import check_body_is_object
from api.experiments.prompt_experiment import create_from_prompt
from api.experiments.render import experiment_out
from api.routes.common import IdempotencyKey, RawBody, TemporalDep
from api.routing import FlexRouter
from db import experiment_stats
from db.types import utcnow
from domain import flag_implementation
from domain.experiment_stats import percent_change, velocity_windows
from domain.prompt_experiments import list_templates

router = FlexRouter(tags=["experiments"])

READ = Depends(ProjectAuth("experiment:read"))
WRITE = Depends(ProjectAuth("experiment:write"))
FLAG_READ = Depends(ProjectAuth("feature_flag:read"))


@router.get("/experiments/eligible_feature_flags/", summary="Flags that can back an experiment")
async def eligible_feature_flags(
    request: Request, ctx: Annotated[ProjectContext, FLAG_READ], session: SessionDep
) -> dict[str, Any]:
    return await eligible_flags(session, ctx.project_id, request)


@router.get(
    "/experiments/requires_flag_implementation/",
    summary="Whether the events of the last 7 days lack `$feature/…` properties",
)
async def requires_flag_implementation(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    params = request.query_params
    names = flag_implementation.event_names(params.get("events"))
    names |= await experiment_stats.step_event_names(
        session, ctx.project_id, flag_implementation.action_ids(params.get("actions"))
    )
    since = utcnow() - timedelta(days=flag_implementation.LOOKBACK_DAYS)
    limit = flag_implementation.sample_size(params.get("limit"))
    for name in sorted(names):
        sampled = await experiment_stats.recent_properties(session, ctx.project_id, name, since, limit)
        if not flag_implementation.requires_flag_warning(sampled):
            return {"result": False}
    return {"result": True}


@router.get("/experiments/stats/", summary="Experimentation velocity over 30-day windows")
async def stats(ctx: Annotated[ProjectContext, READ], session: SessionDep) -> dict[str, Any]:
    windows = velocity_windows(utcnow(), ctx.project_timezone)
    team = ctx.project_id
    last = await experiment_stats.count_experiments(
        session, team, column="start_date", start=windows.last_start, end=windows.last_end
    )
    previous = await experiment_stats.count_experiments(
        session, team, column="start_date", start=windows.previous_start, end=windows.previous_end
    )
    return {
        "launched_last_30d": last,
        "launched_previous_30d": previous,
        "percent_change": percent_change(last, previous),
        "active_experiments": await experiment_stats.count_experiments(
            session, team, column="start_date", active_only=True
        ),
        "completed_last_30d": await experiment_stats.count_experiments(
            session, team, column="end_date", start=windows.last_start, end=windows.last_end
        ),
    }


@router.get("/experiments/prompt_templates/", summary="Metric templates for create_from_prompt")
async def prompt_templates(ctx: Annotated[ProjectContext, READ]) -> list[dict[str, str]]:
    return list_templates()


@router.post(
    "/experiments/create_from_prompt/", status_code=201, summary="A draft comparing versions of an LLM prompt"
)
async def experiment_from_prompt(
    body: RawBody,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    # Reading the prompt's versions needs prompt access too: experiment:write alone could probe names.
    check_scope(ctx.principal, "llm_prompt:read", secret_allowed=False)
    experiment, flag = await create_from_prompt(
        session, temporal, ctx, check_body_is_object(body), idempotency_key
    )
    return await experiment_out(session, experiment, flag=flag, user_access_level=commands.access_level(ctx))


def _object(body: Any) -> dict[str, Any]:
    return {} if body is None else check_body_is_object(body)


@router.post("/experiments/{experiment_id}/duplicate/", status_code=201, summary="Duplicate as a new draft")
async def duplicate(
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: RawBody = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    source, flag = await commands.find_experiment(session, ctx, experiment_id)
    await check_not_legacy(session, source, LEGACY_DUPLICATE)
    data = _object(body)
    create_body = await clone_body(
        session,
        source,
        flag,
        ctx.project_id,
        feature_flag_key=data.get("feature_flag_key"),
        name=data.get("name"),
    )
    experiment, new_flag = await create_via_workflow(
        session, temporal, team_id=ctx.project_id, actor_id=ctx.principal.user_id, body=create_body,
        update_id=idempotency_key, request={"duplicate": experiment_id, "body": data},
    )  # fmt: skip
    return await experiment_out(
        session, experiment, flag=new_flag, user_access_level=commands.access_level(ctx)
    )


@router.post(
    "/experiments/{experiment_id}/copy_to_project/",
    status_code=201,
    summary="Copy into another project of the organization as a new draft",
)
async def copy_to_project(
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: RawBody = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    source, flag = await commands.find_experiment(session, ctx, experiment_id)
    await check_not_legacy(session, source, LEGACY_COPY)
    data = _object(body)
    target = await resolve_copy_target(session, ctx, data)
    assert target.id is not None
    create_body = await clone_body(
        session, source, flag, target.id, feature_flag_key=data.get("feature_flag_key"), name=data.get("name")
    )
    experiment, new_flag = await create_via_workflow(
        session, temporal, team_id=target.id, actor_id=ctx.principal.user_id, body=create_body,
        update_id=idempotency_key, request={"copy": experiment_id, "body": data},
    )  # fmt: skip
    return await experiment_out(
        session, experiment, flag=new_flag, user_access_level=commands.access_level(ctx)
    )


@router.post(
    "/experiments/{experiment_id}/create_exposure_cohort_for_experiment/",
    status_code=201,
    summary="A cohort of the users exposed to the experiment",
)
async def exposure_cohort(
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    return await create_exposure_cohort(session, temporal, ctx, experiment_id, idempotency_key)
