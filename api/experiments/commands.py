"""Send one REST write to the experiment's workflow and answer with the fresh representation."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import not_found
from api.experiment_gateway import UpdateRejected, execute_update
from api.experiments.render import experiment_out
from api.temporal import TemporalGateway
from db import experiments as queries
from db.tables import Experiment, ExperimentActivity, FeatureFlag
from domain.experiment_messages import ExperimentSnapshot, WorkflowInput
from domain.lifecycle import stored_status
from workflows.constants import experiment_workflow_id, update_operation_id


async def load(
    session: AsyncSession, ctx: ProjectContext, experiment_id: int, *, include_deleted: bool = False
) -> tuple[Experiment, FeatureFlag | None]:
    found = await queries.experiment_with_flag(session, experiment_id)
    if found is None or found[0].team_id != ctx.project_id or (found[0].deleted and not include_deleted):
        raise not_found()
    return found


def observed_snapshot(experiment: Experiment, flag: FeatureFlag | None) -> ExperimentSnapshot:
    return ExperimentSnapshot.model_validate(queries.snapshot_fields(experiment, flag))


async def send(
    session: AsyncSession,
    gateway: TemporalGateway,
    ctx: ProjectContext,
    experiment: Experiment,
    flag: FeatureFlag | None,
    *,
    update: str,
    arg: BaseModel,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """Update-With-Start from the row we read (self-healing), then re-read and render."""
    assert experiment.id is not None
    observed = observed_snapshot(experiment, flag)
    if hasattr(arg, "observed"):
        arg = arg.model_copy(update={"observed": observed})
    experiment_id = experiment.id
    update_id = idempotency_key or str(uuid.uuid4())
    # End our read transaction first: the activity writes from another connection, and the
    # re-read below must see its commit (and SQLite must not see our snapshot lock).
    await session.commit()
    try:
        await execute_update(
            gateway,
            project_id=ctx.project_id,
            experiment_id=experiment_id,
            update=update,
            arg=arg,
            start=WorkflowInput(project_id=ctx.project_id, experiment_id=experiment_id, snapshot=observed),
            flag_key=observed.flag_key,
            update_id=update_id,
        )
    except UpdateRejected as rejected:
        if not await _applied_anyway(session, gateway, ctx.project_id, experiment_id, update_id):
            await record_rejection(session, ctx, experiment_id, update, rejected.error, observed)
            raise rejected.error from None
    # Only what the activity wrote is stale: one query refreshes the experiment and its flag, and
    # the caller's user and project stay loaded.
    found = await queries.experiment_with_flag(session, experiment_id)
    assert found is not None
    return await experiment_out(session, found[0], user_access_level=access_level(ctx))


async def _applied_anyway(
    session: AsyncSession, gateway: TemporalGateway, project_id: int, experiment_id: int, update_id: str
) -> bool:
    """Did the write commit although the update reported failure?

    The server may abort an update whose local activity already committed (it discards the
    workflow task under contention); the client's retry is then refused. The idempotency row
    tells the truth: answer 200 and let the workflow reload what it missed.
    """
    workflow_id = experiment_workflow_id(project_id, experiment_id)
    if await queries.applied_result(session, update_operation_id(workflow_id, update_id)) is None:
        return False
    client = await gateway.client()
    await client.get_workflow_handle(workflow_id).execute_update(
        "resync", result_type=ExperimentSnapshot, rpc_timeout=gateway.rpc_timeout
    )
    return True


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
