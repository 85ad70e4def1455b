"""Create an experiment through its workflow from a create body (the path of POST /experiments/).

Duplicate, copy-to-project and create-from-prompt build a body and come through here, so every new
experiment is validated by the same rules and written by the workflow's `create` update.

With an Idempotency-Key the experiment id is bound to the key (and to a hash of the request): a
retry gets the same id, hence the same workflow and update id, and so the first create's result;
the same key with another request is refused with 422 and changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.experiment_updates import ExperimentUpdate, UpdateRejected, execute_update
from api.experiments.commands import idempotency_key_reused
from api.experiments.create_request import build_create_request
from api.temporal import TemporalConnection
from db import experiments as queries
from db import operations
from db.tables import Experiment, FeatureFlag
from domain.experiment_messages import WorkflowInput
from domain.operation_ids import update_operation_id
from workflows.constants import experiment_workflow_id


def request_hash(request: Any) -> str:
    """A stable digest of what the client asked for (key order does not matter)."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _experiment_id(session: AsyncSession, team_id: int, key: str | None, digest: str) -> int:
    """A new id, or the one a previous request with this key was given."""
    if key is None:
        return await queries.allocate_experiment_id(session, team_id)
    for _attempt in range(2):
        found = await queries.allocation_by_key(session, team_id, key)
        if found is not None and found.id is not None:
            if found.request_hash != digest:
                raise idempotency_key_reused()
            return found.id
        try:
            async with session.begin_nested():
                return await queries.allocate_experiment_id(session, team_id, key, digest)
        except IntegrityError:
            continue  # a concurrent request with the same key allocated first: use its id
    raise AssertionError("unreachable: the key's allocation exists after a conflict")


async def create_via_workflow(
    session: AsyncSession,
    temporal: TemporalConnection,
    *,
    team_id: int,
    actor_id: int | None,
    body: dict[str, Any],
    update_id: str | None = None,
    request: Any = None,
) -> tuple[Experiment, FeatureFlag | None]:
    """The experiment and flag as the create left them. `request`: what identifies the client's
    request for its Idempotency-Key (default: the body)."""
    req, flag_key = await build_create_request(session, team_id, actor_id, body, 0)
    digest = request_hash(body if request is None else request)
    experiment_id = await _experiment_id(session, team_id, update_id, digest)
    if update_id is not None:  # a retry may apply what an earlier attempt gave up on
        await operations.clear_fence(
            session, update_operation_id(experiment_workflow_id(team_id, experiment_id), update_id)
        )
    update_id = update_id or str(uuid.uuid4())
    # The id allocation must be committed before the workflow (another connection) writes the row.
    await session.commit()
    req.row["id"] = experiment_id
    try:
        await execute_update(
            temporal,
            ExperimentUpdate(
                project_id=team_id,
                experiment_id=experiment_id,
                name="create",
                arg=req,
                start=WorkflowInput(project_id=team_id, experiment_id=experiment_id),
                flag_key=flag_key,
                update_id=update_id,
                name_of_experiment=str(req.row.get("name") or ""),
            ),
        )
    except UpdateRejected as rejected:
        raise rejected.error from None
    op_id = update_operation_id(experiment_workflow_id(team_id, experiment_id), update_id)
    applied = await operations.applied_operation(session, op_id)
    if applied is not None and applied.image is not None:
        return operations.rows_from_image(applied.image)
    found = await queries.experiment_with_flag(session, experiment_id)
    assert found is not None
    return found
