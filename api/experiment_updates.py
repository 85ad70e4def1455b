"""REST writes become workflow Updates (Update-With-Start, USE_EXISTING): one writer per experiment.

Update-With-Start makes every write self-healing: if the experiment's workflow is missing (a
restored experiment, older data) it is started from the row we read. Failures come back as the
ApplicationError the validator or activity raised, and are mapped onto PostHog's responses here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
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
from api.temporal import TemporalConnection
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


@dataclass(frozen=True)
class ExperimentUpdate:
    """One REST write as an Update on the experiment's workflow: everything the call needs."""

    project_id: int
    experiment_id: int
    name: str  # the update: create, update, launch, pause, …
    arg: BaseModel
    start: WorkflowInput  # the workflow's input, should it have to be started (self-healing)
    flag_key: str | None
    update_id: str
    result_type: type[BaseModel] = ExperimentSnapshot
    name_of_experiment: str | None = None  # the workflow's summary in the Temporal UI, if started

    @property
    def workflow_id(self) -> str:
        return experiment_workflow_id(self.project_id, self.experiment_id)


def _start_operation(
    temporal: TemporalConnection, call: ExperimentUpdate
) -> WithStartWorkflowOperation[Any, Any]:
    snapshot = call.start.snapshot
    status = snapshot.status.value if snapshot else "draft"
    name = snapshot.name if snapshot else (call.name_of_experiment or "")
    return WithStartWorkflowOperation(
        EXPERIMENT_WORKFLOW_TYPE,
        call.start,
        id=call.workflow_id,
        task_queue=temporal.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=start_search_attributes(call.project_id, call.experiment_id, status, call.flag_key),
        memo={"name": name},
        # The UI's workflow list then reads like the experiments list.
        static_summary=f"{name} (experiment {call.experiment_id})"
        if name
        else f"Experiment {call.experiment_id}",
    )


async def execute_update(temporal: TemporalConnection, call: ExperimentUpdate) -> Any:
    """Run one Update on the experiment's workflow (starting it if needed); bounded in time.

    The update carries the HTTP request's id (logged by the worker) and its deadline (`apply_by`),
    and its outcome is counted in flagship_experiment_transitions_total (a refusal the caller then
    finds applied anyway, the rare aborted-update case, stays counted as refused).
    """
    arg = prepare_update(call.arg, call.project_id, call.experiment_id, call.workflow_id)
    if "apply_by" in type(arg).model_fields:
        arg = arg.model_copy(update={"apply_by": utcnow() + temporal.admission_window})
    call = replace(call, arg=arg)
    try:
        result = await _execute_update(temporal, call)
    except UpdateRejected as rejected:
        record_transition(call.name, transition_outcome(rejected.error))
        raise
    record_transition(call.name, "accepted")
    return result


async def _execute_update(temporal: TemporalConnection, call: ExperimentUpdate) -> Any:
    """The common case is a running workflow, so a plain update goes first (one RPC, no
    multi-operation); only when the workflow is missing or closed does Update-With-Start run."""
    client = await temporal.client()
    try:
        async with asyncio.timeout(temporal.rpc_timeout.total_seconds() + 1):
            if call.start.snapshot is not None:
                handle = client.get_workflow_handle(call.workflow_id)
                try:
                    result: Any = await handle.execute_update(
                        call.name,
                        call.arg,
                        id=call.update_id,
                        result_type=call.result_type,
                        rpc_timeout=temporal.rpc_timeout,
                    )
                    return result
                except RPCError as err:
                    if err.status != RPCStatusCode.NOT_FOUND:
                        raise
            return await _update_with_start(temporal, call)
    except WorkflowUpdateFailedError as err:
        raise UpdateRejected(map_failure(err.cause)) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        raise UpdateRejected(service_unavailable(NO_WORKER)) from None
    except RPCError as err:
        raise UpdateRejected(_map_rpc(err)) from None


async def _update_with_start(temporal: TemporalConnection, call: ExperimentUpdate) -> Any:
    client = await temporal.client()
    op = _start_operation(temporal, call)
    try:
        result: Any = await client.execute_update_with_start_workflow(
            call.name,
            call.arg,
            start_workflow_operation=op,
            id=call.update_id,
            result_type=call.result_type,
            rpc_timeout=temporal.rpc_timeout,
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
    temporal: TemporalConnection, project_id: int, experiment_id: int, name: str, arg: BaseModel
) -> None:
    """Fire-and-forget to the experiment's workflow (approval decisions); bounded in time."""
    client = await temporal.client()
    handle = client.get_workflow_handle(experiment_workflow_id(project_id, experiment_id))
    try:
        async with asyncio.timeout(temporal.rpc_timeout.total_seconds() + 1):
            await handle.signal(name, arg, rpc_timeout=temporal.rpc_timeout)
    except (TimeoutError, RPCError) as err:
        raise _map_rpc(err) if isinstance(err, RPCError) else service_unavailable(NO_WORKER) from None
