"""REST writes become workflow Updates (Update-With-Start, USE_EXISTING): one writer per experiment.

Update-With-Start makes every write self-healing: if the experiment's workflow is missing (a
restored experiment, older data) it is started from the row we read. Failures come back as the
ApplicationError the validator or activity raised, and are mapped onto PostHog's responses here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import BaseModel
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, RawError, failure_response, not_found, service_unavailable
from api.instrumentation import prepare_update, transition_outcome
from api.temporal import TemporalGateway
from db.types import utcnow
from domain.experiment_messages import ExperimentSnapshot, WorkflowInput
from domain.failures import Failure, FailureDetails
from observability.metrics import record_transition
from workflows.constants import EXPERIMENT_WORKFLOW_TYPE, experiment_workflow_id
from workflows.search_attributes import start_search_attributes

log = logging.getLogger("flagship.api")

NO_WORKER = (
    "No worker is processing experiment changes right now, so this change was not applied. Try again shortly."
)


class UpdateRejected(Exception):
    """The workflow refused the update; carries the HTTP error to answer with."""

    def __init__(self, error: ApiError | RawError) -> None:
        super().__init__(str(error))
        self.error = error


def _start_operation(
    gateway: TemporalGateway, project_id: int, experiment_id: int, start: WorkflowInput, flag_key: str | None
) -> WithStartWorkflowOperation[Any, Any]:
    status = start.snapshot.status.value if start.snapshot else "draft"
    name = start.snapshot.name if start.snapshot else ""
    return WithStartWorkflowOperation(
        EXPERIMENT_WORKFLOW_TYPE,
        start,
        id=experiment_workflow_id(project_id, experiment_id),
        task_queue=gateway.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=start_search_attributes(project_id, experiment_id, status, flag_key),
        memo={"name": name},
        static_summary=f"Experiment {experiment_id} of project {project_id}",
    )


async def execute_update(
    gateway: TemporalGateway,
    *,
    project_id: int,
    experiment_id: int,
    update: str,
    arg: BaseModel,
    start: WorkflowInput,
    flag_key: str | None,
    update_id: str | None,
) -> ExperimentSnapshot:
    """Run one Update on the experiment's workflow (starting it if needed); bounded in time.

    The update carries the HTTP request's id (logged by the worker), and its outcome is counted in
    flagship_experiment_transitions_total (a refusal that commands.send then finds applied anyway,
    the rare aborted-update case, stays counted as refused).
    """
    arg = prepare_update(arg, project_id, experiment_id, experiment_workflow_id(project_id, experiment_id))
    if "apply_by" in type(arg).model_fields:
        arg = arg.model_copy(update={"apply_by": utcnow() + gateway.admission_window})
    try:
        result = await _execute_update(
            gateway, project_id, experiment_id, update, arg, start, flag_key, update_id
        )
    except UpdateRejected as rejected:
        record_transition(update, transition_outcome(rejected.error))
        raise
    record_transition(update, "accepted")
    return result


async def _execute_update(
    gateway: TemporalGateway,
    project_id: int,
    experiment_id: int,
    update: str,
    arg: BaseModel,
    start: WorkflowInput,
    flag_key: str | None,
    update_id: str | None,
) -> ExperimentSnapshot:
    """The common case is a running workflow, so a plain update goes first (one RPC, no
    multi-operation); only when the workflow is missing or closed does Update-With-Start run."""
    client = await gateway.client()
    try:
        async with asyncio.timeout(gateway.rpc_timeout.total_seconds() + 1):
            if start.snapshot is not None:
                handle = client.get_workflow_handle(experiment_workflow_id(project_id, experiment_id))
                try:
                    result: ExperimentSnapshot = await handle.execute_update(
                        update,
                        arg,
                        id=update_id,
                        result_type=ExperimentSnapshot,
                        rpc_timeout=gateway.rpc_timeout,
                    )
                    return result
                except RPCError as err:
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise
            return await _update_with_start(
                gateway, project_id, experiment_id, update, arg, start, flag_key, update_id
            )
    except WorkflowUpdateFailedError as err:
        raise UpdateRejected(map_failure(err.cause)) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        raise UpdateRejected(service_unavailable(NO_WORKER)) from None
    except RPCError as err:
        raise UpdateRejected(_map_rpc(err)) from None


async def _update_with_start(
    gateway: TemporalGateway,
    project_id: int,
    experiment_id: int,
    update: str,
    arg: BaseModel,
    start: WorkflowInput,
    flag_key: str | None,
    update_id: str | None,
) -> ExperimentSnapshot:
    client = await gateway.client()
    op = _start_operation(gateway, project_id, experiment_id, start, flag_key)
    try:
        result: ExperimentSnapshot = await client.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=op,
            id=update_id,
            result_type=ExperimentSnapshot,
            rpc_timeout=gateway.rpc_timeout,
        )
        return result
    finally:
        # A failed start leaves its exception in the handle future; retrieve it (notes §2).
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(op.workflow_handle(), timeout=0.01)


TOO_MANY = "Too many concurrent changes to this experiment. Retry shortly."
NOT_APPLIED = "The change could not be applied. Try again shortly."


def _map_rpc(err: RPCError) -> ApiError:
    if err.status == RPCStatusCode.NOT_FOUND:
        return not_found()
    if err.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        # The server caps in-flight updates per workflow; that is a conflict, not an outage.
        return ApiError(409, "invalid_request", "conflict", TOO_MANY)
    return service_unavailable(f"Temporal is unavailable ({err.status.name}). Try again shortly.")


def map_failure(cause: BaseException | None) -> ApiError | RawError:
    """ApplicationError(type=…) from a validator, handler or activity -> PostHog's response."""
    if not isinstance(cause, ApplicationError):
        return service_unavailable(NOT_APPLIED)
    try:
        failure = Failure(cause.type or "")
    except ValueError:
        # An unexpected failure in the worker: its message may carry SQL or internals (the
        # worker logged it); the caller gets the generic answer.
        log.warning("experiment update failed in the worker: %s", cause.type)
        return service_unavailable(NOT_APPLIED)
    return failure_response(failure, cause.message or NOT_APPLIED, FailureDetails.of(cause.details))


async def signal_experiment(
    gateway: TemporalGateway, project_id: int, experiment_id: int, name: str, arg: BaseModel
) -> None:
    """Fire-and-forget to the experiment's workflow (approval decisions); bounded in time."""
    client = await gateway.client()
    handle = client.get_workflow_handle(experiment_workflow_id(project_id, experiment_id))
    try:
        async with asyncio.timeout(gateway.rpc_timeout.total_seconds() + 1):
            await handle.signal(name, arg, rpc_timeout=gateway.rpc_timeout)
    except (TimeoutError, RPCError) as err:
        raise _map_rpc(err) if isinstance(err, RPCError) else service_unavailable(NO_WORKER) from None
