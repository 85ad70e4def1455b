"""Send one REST write to the experiment's workflow and answer with the fresh representation."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import ApiError, RawError, not_found
from api.experiment_updates import ExperimentUpdate, UpdateRejected, execute_update
from api.experiments.render import experiment_out
from api.temporal import TemporalConnection
from db import experiments as queries
from db import operations
from db.tables import Experiment, ExperimentActivity, FeatureFlag
from domain.autopilot.decide import Decision
from domain.autopilot.rules import rules_of
from domain.errors import ValidationFailed
from domain.experiment_messages import EvaluateRequest, ExperimentSnapshot, WorkflowInput
from domain.lifecycle import stored_status
from domain.operation_ids import update_operation_id
from workflows.constants import experiment_workflow_id


def idempotency_key_reused() -> ApiError:
    """The same key with another request (IETF Idempotency-Key draft: 422); nothing was changed."""
    return ApiError(
        422,
        "invalid_request",
        "idempotency_key_reused",
        "This Idempotency-Key was already used for a different request. Use a new key for a new request.",
    )


async def find_experiment(
    session: AsyncSession, ctx: ProjectContext, experiment_id: int, *, include_deleted: bool = False
) -> tuple[Experiment, FeatureFlag | None]:
    found = await queries.experiment_with_flag(session, experiment_id)
    if found is None or not _visible(found[0], ctx, include_deleted):
        raise not_found()
    return found


async def find_experiment_for_action(
    session: AsyncSession, ctx: ProjectContext, experiment_id: int
) -> tuple[Experiment, FeatureFlag | None, bool]:
    """`find_experiment`, and whether an approved change was ever applied to it (same query)."""
    found = await queries.experiment_for_action(session, experiment_id)
    if found is None or not _visible(found[0], ctx, include_deleted=False):
        raise not_found()
    return found


def _visible(experiment: Experiment, ctx: ProjectContext, include_deleted: bool) -> bool:
    return experiment.team_id == ctx.project_id and (include_deleted or not experiment.deleted)


def observed_snapshot(experiment: Experiment, flag: FeatureFlag | None) -> ExperimentSnapshot:
    return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))


async def send(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    experiment: Experiment,
    flag: FeatureFlag | None,
    *,
    update: str,
    arg: BaseModel,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Update-With-Start from the row we read (self-healing); answer with the rows the update left.

    Every answer is true: a 200 body is the state this very operation produced (stored with its
    operation id by the activity), never a later state another request made; an error means it
    was not applied and never will be (`_settle`)."""
    assert experiment.id is not None
    observed = observed_snapshot(experiment, flag)
    if hasattr(arg, "observed"):
        arg = arg.model_copy(update={"observed": observed})
    experiment_id = experiment.id
    update_id = idempotency_key or str(uuid.uuid4())
    op_id = update_operation_id(experiment_workflow_id(ctx.project_id, experiment_id), update_id)
    if idempotency_key is not None:
        await operations.clear_fence(session, op_id)
    # End our transaction first: the activity writes from another connection, and SQLite must not
    # see our snapshot lock.
    await session.commit()
    try:
        await execute_update(
            temporal,
            ExperimentUpdate(
                project_id=ctx.project_id,
                experiment_id=experiment_id,
                name=update,
                arg=arg,
                start=WorkflowInput(
                    project_id=ctx.project_id, experiment_id=experiment_id, snapshot=observed
                ),
                flag_key=observed.flag_key,
                update_id=update_id,
            ),
        )
    except UpdateRejected as rejected:
        await _settle(session, temporal, ctx, experiment_id, op_id, update, rejected.error, observed)
    return await answer(session, ctx, op_id, update)


async def answer(session: AsyncSession, ctx: ProjectContext, op_id: str, operation: str) -> dict[str, Any]:
    """The representation of what operation `op_id` left, from its applied-operation row."""
    applied = await operations.applied_operation(session, op_id)
    if applied is None or applied.image is None:
        # Applied before row images were stored (a retried Idempotency-Key of an old request).
        experiment_id = applied.experiment_id if applied is not None else None
        found = await queries.experiment_with_flag(session, experiment_id) if experiment_id else None
        if found is None:
            raise not_found()
        experiment, flag = found
    else:
        if not _same_operation(applied.operation, operation):
            raise idempotency_key_reused()
        experiment, flag = operations.rows_from_image(applied.image)
    return await experiment_out(session, experiment, flag=flag, user_access_level=access_level(ctx))


def _same_operation(applied: str | None, requested: str) -> bool:
    # PATCH is stored as update, delete or restore (by its body).
    return applied == requested or (requested == "update" and applied in ("delete", "restore"))


async def _settle(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    experiment_id: int,
    op_id: str,
    operation: str,
    error: ApiError | RawError,
    observed: ExperimentSnapshot,
) -> None:
    """The update reported failure: make that final, or find it was applied after all.

    The server can abort an update whose local activity already committed (it discards the
    workflow task under contention), and an update this request stopped waiting for may still be
    running. A fence row on the operation id settles it: either the operation's own row is
    already there (applied: answer 200 and let the workflow reload what it missed), or it never
    can be, and the error we answer is the truth."""
    applied = await operations.fence(session, op_id, experiment_id)
    await session.commit()
    if applied is None:
        await record_rejection(session, ctx, experiment_id, operation, error, observed)
        raise error from None
    client = await temporal.client()
    await client.get_workflow_handle(experiment_workflow_id(ctx.project_id, experiment_id)).execute_update(
        "resync", result_type=ExperimentSnapshot, rpc_timeout=temporal.rpc_timeout
    )


def access_level(ctx: ProjectContext) -> str | None:
    return None if ctx.principal.secret_project is not None else "editor"


async def record_rejection(
    session: AsyncSession,
    ctx: ProjectContext,
    experiment_id: int,
    operation: str,
    error: Exception,
    observed: ExperimentSnapshot,
) -> None:
    """Rejected REST calls never reach the workflow's history; the audit trail keeps them here."""
    status = getattr(error, "status", 0)
    if not 400 <= status < 500 or status == 404:
        return
    outcome = {409: "conflict"}.get(status, "rejected")
    stored = stored_status(observed.start_date, observed.end_date).value
    session.add(
        ExperimentActivity(
            team_id=ctx.project_id,
            experiment_id=experiment_id,
            operation=operation,
            outcome=outcome,
            via="rest",
            actor_id=ctx.principal.user_id,
            from_status=stored,
            to_status=stored,
            detail=getattr(error, "detail", str(error)),
        )
    )
    await session.commit()


async def evaluate_rules(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    experiment: Experiment,
    flag: FeatureFlag | None,
) -> dict[str, Any]:
    """`POST …/evaluate_rules/`: the autopilot evaluates now and acts as its timer would; the
    answer is the decision, its evidence and the action taken (or that none was)."""
    assert experiment.id is not None
    observed = observed_snapshot(experiment, flag)
    if rules_of(experiment.scheduling_config) is None:
        raise ValidationFailed(
            "This experiment has no autopilot rules: set scheduling_config.autopilot first.",
            attr="scheduling_config",
        )
    if observed.status.value != "running":
        raise ValidationFailed(
            f"The autopilot evaluates running experiments only; this one is {observed.status.value}."
        )
    await session.commit()
    try:
        decision: Decision = await execute_update(
            temporal,
            ExperimentUpdate(
                project_id=ctx.project_id,
                experiment_id=experiment.id,
                name="evaluate_rules",
                arg=EvaluateRequest(actor_id=ctx.principal.user_id),
                start=WorkflowInput(
                    project_id=ctx.project_id, experiment_id=experiment.id, snapshot=observed
                ),
                flag_key=observed.flag_key,
                update_id=str(uuid.uuid4()),
                result_type=Decision,
            ),
        )
    except UpdateRejected as rejected:
        raise rejected.error from None
    return decision.model_dump(mode="json")
