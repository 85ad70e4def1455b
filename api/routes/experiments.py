"""`/api/projects/{project_id}/experiments/`: list, create, retrieve, PATCH, lifecycle actions.

Reads come from SQL (they keep working while workers are down); every write is an Update on the
experiment's workflow (api/experiments/commands.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.experiments import commands
from api.experiments.create_experiment import create_via_workflow
from api.experiments.fields import check_body_is_object, check_choice, check_string
from api.experiments.render import experiment_out, experiments_out
from api.experiments.ship import already_applied, ship_request
from api.experiments.update import build_update_request
from api.render import bad_request, iso, page_params, paginated
from api.routes.common import IdempotencyKey, RawBody, TemporalDep
from api.routing import FlexRouter
from api.temporal import TemporalConnection
from db import experiments as queries
from db.experiment_list import ORDER_FIELDS, ExperimentFilters, list_experiments
from db.types import utcnow
from domain.errors import ValidationFailed
from domain.experiment_messages import TransitionRequest
from domain.lifecycle import Operation
from domain.scheduling import CONCLUSIONS

router = FlexRouter(tags=["experiments"])

# What ExperimentSerializer requires on create, and so on a full update (PUT), in its field order.
PUT_REQUIRED = ("name", "feature_flag_key")

READ = Depends(ProjectAuth("experiment:read", secret_allowed=True))
WRITE = Depends(ProjectAuth("experiment:write"))


def _filters(request: Request) -> ExperimentFilters:
    params = request.query_params
    order = params.get("order") or "-created_at"
    if order.lstrip("-") not in ORDER_FIELDS:
        raise bad_request(f"Invalid order field: '{order}'")
    flag_id = params.get("feature_flag_id")
    if flag_id is not None and not flag_id.lstrip("-").isdigit():
        raise bad_request("feature_flag_id must be an integer")
    created_by = params.get("created_by_id")
    return ExperimentFilters(
        status=params.get("status"),
        archived=params.get("archived"),
        search=params.get("search"),
        created_by_id=int(created_by) if created_by and created_by.isdigit() else None,
        feature_flag_id=int(flag_id) if flag_id is not None else None,
        prompt_name=params.get("prompt_name"),
        order=order,
    )


@router.get("/experiments/", summary="List experiments")
async def list_(
    request: Request, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await list_experiments(
        session, ctx.project_id, _filters(request), limit=limit, offset=offset, now=utcnow()
    )
    results = await experiments_out(session, rows, user_access_level=commands.access_level(ctx))
    return paginated(request, count, results, limit, offset)


@router.post("/experiments/", status_code=201, summary="Create an experiment")
async def create(
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: RawBody = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    body = check_body_is_object(body)
    experiment, flag = await create_via_workflow(
        session,
        temporal,
        team_id=ctx.project_id,
        actor_id=ctx.principal.user_id,
        body=body,
        update_id=idempotency_key,
    )
    return await experiment_out(session, experiment, flag=flag)


@router.get("/experiments/{experiment_id}/", summary="Retrieve an experiment")
async def retrieve(
    experiment_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    experiment, _ = await commands.find_experiment(session, ctx, experiment_id)
    return await experiment_out(session, experiment, user_access_level=commands.access_level(ctx))


async def _patch(
    experiment_id: int,
    body: Any,
    ctx: ProjectContext,
    session: SessionDep,
    temporal: TemporalConnection,
    idempotency_key: str | None,
) -> dict[str, Any]:
    body = check_body_is_object(body)
    restoring = body.get("deleted") is False
    experiment, flag = await commands.find_experiment(session, ctx, experiment_id, include_deleted=restoring)
    req = await build_update_request(session, experiment, flag, ctx.principal.user_id, body)
    return await commands.send(
        session, temporal, ctx, experiment, flag, update="update", arg=req, idempotency_key=idempotency_key
    )


@router.patch("/experiments/{experiment_id}/", summary="Update an experiment (soft delete: deleted=true)")
async def partial_update(
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: RawBody = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    return await _patch(experiment_id, body, ctx, session, temporal, idempotency_key)


@router.put("/experiments/{experiment_id}/", summary="Update an experiment (all required fields)")
async def update(
    experiment_id: int,
    ctx: Annotated[ProjectContext, WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: RawBody = None,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """PATCH's rules, but like DRF's full update the serializer's required fields must be sent."""
    body = check_body_is_object(body)
    for field in PUT_REQUIRED:
        if field not in body:
            raise ValidationFailed("This field is required.", attr=field, code="required")
    return await _patch(experiment_id, body, ctx, session, temporal, idempotency_key)


@router.delete("/experiments/{experiment_id}/", status_code=405, summary="Hard delete is not allowed")
async def destroy(experiment_id: int, ctx: Annotated[ProjectContext, WRITE]) -> Response:
    """Hard delete is not allowed: PATCH `{"deleted": true}` instead (PostHog's ForbidDestroyModel)."""
    return Response(status_code=405)


def _transition_request(operation: Operation, body: Any, ctx: ProjectContext) -> TransitionRequest:
    data = body if isinstance(body, dict) else {}
    req = TransitionRequest(actor_id=ctx.principal.user_id, via="rest")
    if operation == "ship_variant":
        return ship_request(data, req)
    if operation == "end":
        check_choice("conclusion", data.get("conclusion"), CONCLUSIONS)
        comment = check_string(
            "conclusion_comment",
            data.get("conclusion_comment"),
            max_length=10**6,
            allow_null=True,
            allow_blank=True,
        )
        req = req.model_copy(
            update={
                "conclusion": data.get("conclusion"),
                "conclusion_comment": comment,
                "conclusion_provided": True,
            }
        )
    return req


async def _action(
    operation: Operation,
    experiment_id: int,
    body: Any,
    ctx: ProjectContext,
    session: SessionDep,
    temporal: TemporalConnection,
    idempotency_key: str | None,
) -> dict[str, Any]:
    experiment, flag, approvals_applied = await commands.find_experiment_for_action(
        session, ctx, experiment_id
    )
    req = _transition_request(operation, body, ctx)
    if approvals_applied and await already_applied(session, experiment, operation, req):
        return await experiment_out(session, experiment, user_access_level=commands.access_level(ctx))
    return await commands.send(
        session, temporal, ctx, experiment, flag, update=operation, arg=req, idempotency_key=idempotency_key
    )


def _register_action(operation: Operation, summary: str) -> None:
    async def endpoint(
        experiment_id: int,
        ctx: Annotated[ProjectContext, WRITE],
        session: SessionDep,
        temporal: TemporalDep,
        body: RawBody = None,
        idempotency_key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return await _action(operation, experiment_id, body, ctx, session, temporal, idempotency_key)

    endpoint.__name__ = f"experiment_{operation}"
    router.add_api_route(
        f"/experiments/{{experiment_id}}/{operation}/", endpoint, methods=["POST"], summary=summary
    )


for _operation, _summary in (
    ("launch", "Launch a draft experiment (flag activated, start_date set)"),
    ("pause", "Pause a running experiment (flag deactivated)"),
    ("resume", "Resume a paused experiment (flag reactivated)"),
    ("end", "End a running experiment (conclusion, conclusion_comment)"),
    ("reset", "Reset an experiment back to draft"),
    ("archive", "Archive an ended experiment"),
    ("unarchive", "Unarchive an experiment"),
    ("ship_variant", "Ship one variant to everyone in the flag (ends a running experiment)"),
):
    _register_action(_operation, _summary)  # type: ignore[arg-type]


@router.post(
    "/experiments/{experiment_id}/evaluate_rules/",
    summary="Evaluate the autopilot rules now (scheduling_config.autopilot) and act on the decision",
)
async def evaluate_rules(
    experiment_id: int, ctx: Annotated[ProjectContext, WRITE], session: SessionDep, temporal: TemporalDep
) -> dict[str, Any]:
    experiment, flag = await commands.find_experiment(session, ctx, experiment_id)
    return await commands.evaluate_rules(session, temporal, ctx, experiment, flag)


@router.get("/experiments/{experiment_id}/activity/", summary="Audit trail of the experiment's transitions")
async def activity(
    request: Request, experiment_id: int, ctx: Annotated[ProjectContext, READ], session: SessionDep
) -> dict[str, Any]:
    await commands.find_experiment(session, ctx, experiment_id)
    limit, offset = page_params(request)
    count, rows = await queries.activity_of(
        session, ctx.project_id, experiment_id, limit=limit, offset=offset
    )
    results = [
        {
            "id": row.id,
            "operation": row.operation,
            "outcome": row.outcome,
            "via": row.via,
            "actor_id": row.actor_id,
            "from_status": row.from_status,
            "to_status": row.to_status,
            "detail": row.detail,
            "operation_id": row.operation_id,
            "created_at": iso(row.created_at),
            "evidence": row.evidence,
        }
        for row in rows
    ]
    return paginated(request, count, results, limit, offset)
