"""The approval gate on flag changes made by experiment actions, and applying approved changes.

When an enabled policy covers the flag change an operation makes (reference §5), a change request
is stored and the operation stops with ApprovalRequired (409); the flag is unchanged. The row
survives the failed request on purpose: the approvers act on it later, and the experiment's
workflow applies exactly the approved change by itself (ApprovalActivities.apply_change_request).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import to_application_error
from activities.rows import RowWriter, Written, audit, bump, load_for_write
from activities.transitions import apply_operation, check_assumed_status, write_update
from db import approvals as queries
from db import experiments as experiment_queries
from db import operations
from db.tables import ChangeRequest, ChangeRequestApproval, Experiment, FeatureFlag
from domain import approvals as rules
from domain.errors import ApprovalRequired, Conflict, NotFound
from domain.experiment_messages import ActivityInput, ExperimentSnapshot, TransitionRequest, UpdateRequest
from domain.lifecycle import Operation, flag_active_after, stored_status
from domain.operation_ids import change_request_operation_id


class ApplyChangeInput(BaseModel):
    change_request_id: str
    project_id: int
    experiment_id: int
    approver_id: int | None = None
    source: str = "api"  # "api": the approvals are in the database; "external": the signal is the approval
    now: AwareDatetime


class ExpireChangeInput(BaseModel):
    change_request_id: str
    now: AwareDatetime


def _changes_flag(operation: Operation, flag: FeatureFlag) -> bool:
    target = flag_active_after(operation)
    return operation == "ship_variant" or (target is not None and flag.active != target)


async def approval_gate(
    session: AsyncSession,
    experiment: Experiment,
    flag: FeatureFlag | None,
    inp: ActivityInput,
    *,
    project_has_policies: bool = True,
) -> dict[str, Any] | None:
    """None when no policy applies to the operation's flag change; else the 409 body.
    `project_has_policies=False` (counted with the row) spares the policy query."""
    action_key = rules.action_key_for(inp.operation)
    if action_key is None or flag is None or inp.request.approved_change_request_id is not None:
        return None
    if not project_has_policies:
        return None
    if not _changes_flag(inp.operation, flag):
        return None
    return await queries.gate(
        session,
        flag=flag,
        action_keys=[action_key],
        intent=rules.operation_intent(inp.operation, inp.experiment_id, inp.request.model_dump()),
        description=f"{inp.operation} on experiment {experiment.name!r}",
        actor_id=inp.request.actor_id,
        origin_op_id=inp.op_id,
        now=inp.now,
        experiment_id=inp.experiment_id,
    )


def approval_required(body: dict[str, Any]) -> ApplicationError:
    return to_application_error(ApprovalRequired(body))


class ApprovalActivities(RowWriter):
    @activity.defn(name="approval.apply")
    async def apply_change_request(self, inp: ApplyChangeInput) -> ExperimentSnapshot:
        """Apply exactly the approved change once (op id per change request)."""

        async def work(session: AsyncSession) -> Written:
            cr = await session.get(ChangeRequest, inp.change_request_id)
            # Only the experiment the request was raised for: an approval_granted signal naming
            # another experiment's request must not apply that change here.
            if cr is None or cr.team_id != inp.project_id or cr.experiment_id != inp.experiment_id:
                raise NotFound()
            await _ensure_approved(session, cr, inp)
            experiment, flag = await load_for_write(session, inp.experiment_id)
            op_id = change_request_operation_id(cr.id)
            if cr.intent.get("operation") == "update":
                req = UpdateRequest.model_validate(
                    cr.intent["request"] | {"approved_change_request_id": cr.id}
                )
                check_assumed_status(experiment, req)
                snapshot, image = await write_update(session, experiment, flag, req, inp.now, op_id)
            else:
                snapshot, image = _apply_operation_intent(session, cr, experiment, flag, inp.now, op_id)
            cr.state, cr.applied_at, cr.updated_at = "applied", inp.now, inp.now
            cr.applied_by_id = inp.approver_id
            cr.result_data = snapshot.model_dump(mode="json")
            session.add(cr)
            return snapshot, image

        return await self.once(
            change_request_operation_id(inp.change_request_id), work, inp.experiment_id, "approval"
        )

    @activity.defn(name="approval.expire")
    async def expire_change_request(self, inp: ExpireChangeInput) -> str:
        """Drop a request whose approvals did not arrive in time; returns its final state."""
        async with self.sessionmaker() as session:
            cr = await session.get(ChangeRequest, inp.change_request_id)
            if cr is None:
                return "missing"
            if cr.state in rules.OPEN_STATES and cr.expires_at <= inp.now:
                cr.state, cr.updated_at = "expired", inp.now
                session.add(cr)
                await session.commit()
            return cr.state


def _apply_operation_intent(
    session: AsyncSession,
    cr: ChangeRequest,
    experiment: Experiment,
    flag: FeatureFlag | None,
    now: datetime,
    op_id: str,
) -> Written:
    before = stored_status(experiment.start_date, experiment.end_date)
    req = TransitionRequest.model_validate(
        {k: v for k, v in cr.intent.items() if k in TransitionRequest.model_fields}
        | {"via": "approval", "actor_id": cr.created_by_id, "approved_change_request_id": cr.id}
    )
    operation: Operation = cr.intent["operation"]
    apply_operation(operation, experiment, flag, req, now)
    bump(session, experiment, now)
    audit(session, experiment, operation, cr.created_by_id, op_id, before.value, via="approval")
    snapshot = ExperimentSnapshot.model_validate(experiment_queries.snapshot_fields(experiment, flag))
    return snapshot, operations.row_image(experiment, flag)


async def _ensure_approved(session: AsyncSession, cr: ChangeRequest, inp: ApplyChangeInput) -> None:
    if cr.state not in rules.OPEN_STATES:
        raise Conflict(f"Change request is {cr.state}; nothing to apply.")
    if cr.expires_at <= inp.now:
        raise Conflict("Change request has expired.")
    if inp.source == "external" and cr.state == "pending":
        # An external approval system decides through Temporal: its signal is the approval.
        session.add(
            ChangeRequestApproval(
                change_request_id=cr.id, user_id=None, decision="approved", created_at=inp.now
            )
        )
        cr.state = "approved"
        return
    decisions = await queries.decisions_of(session, cr.id)
    if not rules.quorum_reached(cr.policy_snapshot, decisions):
        raise Conflict("Change request does not have enough approvals yet.")
    cr.state = "approved"
