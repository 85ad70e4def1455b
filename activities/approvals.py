"""The approval gate on flag changes made by experiment actions, and applying approved changes.

When an enabled policy covers the flag change an operation makes (reference §5), a change request
is stored and the operation stops with ApprovalRequired (409); the flag is unchanged. The row
survives the failed request on purpose: the approvers act on it later, and the experiment's
workflow applies exactly the approved change by itself (ApprovalActivities.apply_change_request).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.rows import RowWriter, audit, bump, load_for_write
from activities.transitions import apply_operation
from db import approvals as queries
from db import experiments as experiment_queries
from db.tables import ChangeRequest, ChangeRequestApproval, Experiment, FeatureFlag
from db.tables.approvals import DEFAULT_EXPIRY_SECONDS
from domain import approvals as rules
from domain.errors import Conflict, NotFound
from domain.experiment_messages import ActivityInput, ExperimentSnapshot, TransitionRequest
from domain.lifecycle import Operation, flag_active_after, stored_status


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
    session: AsyncSession, experiment: Experiment, flag: FeatureFlag | None, inp: ActivityInput
) -> dict[str, Any] | None:
    """None when no policy applies; else the 409 body (the change request is added to `session`)."""
    action_key = rules.action_key_for(inp.operation)
    if action_key is None or flag is None or inp.request.approved_change_request_id is not None:
        return None
    if not _changes_flag(inp.operation, flag):
        return None
    policies = [queries.policy_dict(p) for p in await queries.policies_of(session, experiment.team_id)]
    policy = rules.matching_policy(policies, action_key)
    if policy is None:
        return None
    own = await queries.request_by_origin(session, inp.op_id)
    if own is not None:  # a retried activity: answer with the request it created
        return await _body(session, own, inp.request.actor_id, pending=False)
    existing = await queries.open_request_for(session, experiment.team_id, action_key, str(flag.id))
    if existing is not None:
        return await _body(session, existing, inp.request.actor_id, pending=True)
    intent = rules.operation_intent(inp.operation, inp.experiment_id, inp.request.model_dump())
    cr = ChangeRequest(
        id=str(uuid.uuid4()),
        team_id=experiment.team_id,
        experiment_id=inp.experiment_id,
        action_key=action_key,
        resource_id=str(flag.id),
        intent=intent,
        intent_hash=rules.intent_hash(intent),
        intent_display={
            "description": f"{inp.operation} on experiment {experiment.name!r}",
            "flag_key": flag.key,
        },
        policy_snapshot=dict(policy),
        created_by_id=inp.request.actor_id,
        created_at=inp.now,
        updated_at=inp.now,
        expires_at=inp.now + timedelta(seconds=int(policy.get("expiry_seconds") or DEFAULT_EXPIRY_SECONDS)),
        origin_op_id=inp.op_id,
    )
    session.add(cr)
    await session.flush()
    return await _body(session, cr, inp.request.actor_id, pending=False)


async def _body(
    session: AsyncSession, cr: ChangeRequest, viewer: int | None, *, pending: bool
) -> dict[str, Any]:
    decisions = await queries.decisions_of(session, cr.id)
    out = rules.change_request_out(await queries.request_dict(session, cr), decisions, viewer)
    return rules.approval_required_body(out, pending=pending)


def approval_required(body: dict[str, Any]) -> ApplicationError:
    change = body["change_request"]
    return ApplicationError(
        body["detail"],
        {
            "attr": None,
            "code": body["code"],
            "body": body,
            "change_request_id": body["change_request_id"],
            "expires_at": change.get("expires_at"),
            "pending": body["code"] == "change_request_pending",
        },
        type="ApprovalRequired",
        non_retryable=True,
    )


class ApprovalActivities(RowWriter):
    @activity.defn(name="approval.apply")
    async def apply_change_request(self, inp: ApplyChangeInput) -> ExperimentSnapshot:
        """Apply exactly the approved change once (op id per change request)."""

        async def work(session: AsyncSession) -> ExperimentSnapshot:
            cr = await session.get(ChangeRequest, inp.change_request_id)
            if cr is None or cr.team_id != inp.project_id:
                raise NotFound()
            await _ensure_approved(session, cr, inp)
            experiment, flag = await load_for_write(session, inp.experiment_id)
            before = stored_status(experiment.start_date, experiment.end_date)
            req = TransitionRequest.model_validate(
                {k: v for k, v in cr.intent.items() if k in TransitionRequest.model_fields}
                | {"via": "approval", "actor_id": cr.created_by_id, "approved_change_request_id": cr.id}
            )
            operation: Operation = cr.intent["operation"]
            apply_operation(operation, experiment, flag, req, inp.now)
            bump(session, experiment, inp.now)
            audit(
                session, experiment, operation, cr.created_by_id, f"cr:{cr.id}", before.value, via="approval"
            )
            snapshot = ExperimentSnapshot.model_validate(experiment_queries.snapshot_fields(experiment, flag))
            cr.state, cr.applied_at, cr.updated_at = "applied", inp.now, inp.now
            cr.applied_by_id = inp.approver_id
            cr.result_data = snapshot.model_dump(mode="json")
            session.add(cr)
            return snapshot

        return await self.once(f"cr:{inp.change_request_id}", work, inp.experiment_id, "approval")

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
