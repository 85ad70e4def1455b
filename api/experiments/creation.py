"""Create an experiment through its workflow from a create body (the path of POST /experiments/).

Duplicate, copy-to-project and create-from-prompt build a body and come through here, so every new
experiment is validated by the same rules and written by the workflow's `create` update.
"""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.experiment_gateway import UpdateRejected, execute_update
from api.experiments.create import build_create_request
from api.temporal import TemporalGateway
from db import experiments as queries
from db.tables import Experiment
from domain.experiment_messages import WorkflowInput


async def create_via_workflow(
    session: AsyncSession,
    gateway: TemporalGateway,
    *,
    team_id: int,
    actor_id: int | None,
    body: dict[str, Any],
    update_id: str | None = None,
) -> Experiment:
    req, flag_key = await build_create_request(session, team_id, actor_id, body, 0)
    experiment_id = await queries.allocate_experiment_id(session, team_id)
    # The id allocation must be committed before the workflow (another connection) writes the row.
    await session.commit()
    req.row["id"] = experiment_id
    try:
        await execute_update(
            gateway,
            project_id=team_id,
            experiment_id=experiment_id,
            update="create",
            arg=req,
            start=WorkflowInput(project_id=team_id, experiment_id=experiment_id),
            flag_key=flag_key,
            update_id=update_id,
        )
    except UpdateRejected as rejected:
        raise rejected.error from None
    experiment = await queries.experiment_by_id(session, team_id, experiment_id)
    assert experiment is not None
    return experiment
