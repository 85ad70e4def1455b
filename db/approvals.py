"""Queries for approval policies and change requests. Helpers never commit."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import ApprovalPolicy, ChangeRequest, ChangeRequestApproval, FeatureFlag, User
from db.tables.approvals import DEFAULT_EXPIRY_SECONDS
from domain import approvals as rules
from domain.approvals import OPEN_STATES
from domain.users import user_basic


async def policies_of(session: AsyncSession, team_id: int) -> Sequence[ApprovalPolicy]:
    return (
        await session.exec(
            select(ApprovalPolicy).where(ApprovalPolicy.team_id == team_id).order_by(col(ApprovalPolicy.id))
        )
    ).all()


def policy_dict(policy: ApprovalPolicy) -> dict[str, Any]:
    return {
        "id": policy.id,
        "action_key": policy.action_key,
        "approver_config": policy.approver_config,
        "allow_self_approve": policy.allow_self_approve,
        "enabled": policy.enabled,
        "expiry_seconds": policy.expiry_seconds,
    }


async def open_request_for(
    session: AsyncSession, team_id: int, action_key: str, resource_id: str
) -> ChangeRequest | None:
    return (
        await session.exec(
            select(ChangeRequest).where(
                ChangeRequest.team_id == team_id,
                ChangeRequest.action_key == action_key,
                ChangeRequest.resource_id == resource_id,
                col(ChangeRequest.state).in_(OPEN_STATES),
            )
        )
    ).first()


async def request_by_origin(session: AsyncSession, op_id: str) -> ChangeRequest | None:
    return (await session.exec(select(ChangeRequest).where(ChangeRequest.origin_op_id == op_id))).first()


async def decisions_of(session: AsyncSession, change_request_id: str) -> list[dict[str, Any]]:
    return (await decisions_by_request(session, [change_request_id]))[change_request_id]


async def decisions_by_request(session: AsyncSession, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The decisions on each change request, for a page of them in one query."""
    out: dict[str, list[dict[str, Any]]] = {cr_id: [] for cr_id in ids}
    if not ids:
        return out
    rows = (
        await session.exec(
            select(ChangeRequestApproval)
            .where(col(ChangeRequestApproval.change_request_id).in_(list(ids)))
            .order_by(col(ChangeRequestApproval.id))
        )
    ).all()
    for row in rows:
        out.setdefault(row.change_request_id, []).append(
            {
                "id": row.id,
                "user_id": row.user_id,
                "decision": row.decision,
                "comment": row.comment,
                "created_at": row.created_at.isoformat().replace("+00:00", "Z"),
            }
        )
    return out


async def request_dict(session: AsyncSession, cr: ChangeRequest) -> dict[str, Any]:
    """A change request as plain values for domain.approvals.change_request_out."""
    creator = await session.get(User, cr.created_by_id) if cr.created_by_id else None
    applier = await session.get(User, cr.applied_by_id) if cr.applied_by_id else None

    def iso(value: Any) -> Any:
        return value.isoformat().replace("+00:00", "Z") if value is not None else None

    return {
        "id": cr.id,
        "action_key": cr.action_key,
        "action_version": cr.action_version,
        "resource_type": cr.resource_type,
        "resource_id": cr.resource_id,
        "intent": cr.intent,
        "intent_display": cr.intent_display,
        "policy_snapshot": cr.policy_snapshot,
        "state": cr.state,
        "created_by": user_basic(creator),
        "applied_by": user_basic(applier),
        "created_at": iso(cr.created_at),
        "updated_at": iso(cr.updated_at),
        "expires_at": iso(cr.expires_at),
        "applied_at": iso(cr.applied_at),
        "apply_error": cr.apply_error,
        "result_data": cr.result_data,
    }


async def requests_of(
    session: AsyncSession, team_id: int, *, state: str | None, limit: int, offset: int
) -> tuple[int, Sequence[ChangeRequest]]:
    query = select(ChangeRequest).where(ChangeRequest.team_id == team_id)
    if state:
        query = query.where(ChangeRequest.state == state)
    rows = (await session.exec(query.order_by(col(ChangeRequest.created_at).desc()))).all()
    return len(rows), rows[offset : offset + limit]


async def gate(
    session: AsyncSession,
    *,
    flag: FeatureFlag,
    action_keys: Sequence[str],
    intent: Mapping[str, Any],
    description: str,
    actor_id: int | None,
    origin_op_id: str | None,
    now: datetime,
    experiment_id: int | None = None,
) -> dict[str, Any] | None:
    """The approval gate every flag write passes (experiment actions, PATCHes, the flags API).

    None when no enabled policy covers the change; else PostHog's 409 body, with the change request
    added to `session` (the caller commits it: it outlives the refused write)."""
    if not action_keys:
        return None
    policies = [policy_dict(p) for p in await policies_of(session, flag.team_id)]
    gating = rules.gating_policy(policies, action_keys)
    if gating is None:
        return None
    action_key, policy = gating
    own = await request_by_origin(session, origin_op_id) if origin_op_id else None
    if own is not None:  # a retried write: answer with the request it created
        return await approval_body(session, own, actor_id, pending=False)
    existing = await open_request_for(session, flag.team_id, action_key, str(flag.id))
    if existing is not None:
        return await approval_body(session, existing, actor_id, pending=True)
    cr = ChangeRequest(
        id=str(uuid.uuid4()),
        team_id=flag.team_id,
        experiment_id=experiment_id,
        action_key=action_key,
        resource_id=str(flag.id),
        intent=dict(intent),
        intent_hash=rules.intent_hash(intent),
        intent_display={"description": description, "flag_key": flag.key},
        policy_snapshot=dict(policy),
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
        expires_at=now + timedelta(seconds=int(policy.get("expiry_seconds") or DEFAULT_EXPIRY_SECONDS)),
        origin_op_id=origin_op_id,
    )
    session.add(cr)
    await session.flush()
    return await approval_body(session, cr, actor_id, pending=False)


async def approval_body(
    session: AsyncSession, cr: ChangeRequest, viewer: int | None, *, pending: bool
) -> dict[str, Any]:
    decisions = await decisions_of(session, cr.id)
    out = rules.change_request_out(await request_dict(session, cr), decisions, viewer)
    return rules.approval_required_body(out, pending=pending)
