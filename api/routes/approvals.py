"""Approval policies and change requests (PostHog's posthog/approvals), per project.

Approving records the decision in SQL; once the quorum is in, the experiment's workflow gets an
`approval_granted` signal and applies exactly the approved change by itself. Rejecting or
cancelling tells the workflow to drop the change (`change_request_closed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Body, Depends, Request
from fastapi.responses import Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectAuth, ProjectContext, SessionDep
from api.errors import ApiError, not_found, permission_denied
from api.experiment_updates import signal_experiment
from api.experiments.fields import check_string
from api.experiments.flag_writes import FLAG_UPDATE, apply_approved_flag_change
from api.render import iso, page_params, paginated
from api.routes.common import TemporalDep
from api.routing import FlexRouter
from api.temporal import TemporalConnection
from db import accounts
from db import approvals as queries
from db.tables import ApprovalPolicy, ChangeRequest, ChangeRequestApproval
from db.types import utcnow
from domain import approvals as rules
from domain.errors import DomainError, ValidationFailed
from domain.experiment_messages import ApprovalGranted, ChangeRequestClosed

router = FlexRouter(tags=["approvals"])

POLICY_READ = Depends(ProjectAuth("approval_policy:read"))
POLICY_WRITE = Depends(ProjectAuth("approval_policy:write"))
CR_READ = Depends(ProjectAuth("change_request:read"))
CR_WRITE = Depends(ProjectAuth("change_request:write"))


def policy_out(policy: ApprovalPolicy) -> dict[str, Any]:
    return queries.policy_dict(policy) | {
        "created_by": policy.created_by_id,
        "created_at": iso(policy.created_at),
        "updated_at": iso(policy.updated_at),
    }


async def _validate_policy(session: AsyncSession, ctx: ProjectContext, data: dict[str, Any]) -> None:
    if "action_key" in data and data["action_key"] not in rules.ACTION_KEYS:
        raise ValidationFailed(
            f'"{data["action_key"]}" is not a valid choice.', attr="action_key", code="invalid_choice"
        )
    config = data.get("approver_config", {})
    if not isinstance(config, dict):
        raise ValidationFailed("approver_config must be an object", attr="approver_config")
    quorum = config.get("quorum", 1)
    if not isinstance(quorum, int) or isinstance(quorum, bool) or quorum < 1:
        raise ValidationFailed("quorum must be an integer of at least 1", attr="approver_config")
    for user_id in config.get("users") or []:
        user = await accounts.user_by_id(session, int(user_id)) if str(user_id).isdigit() else None
        if user is None or user.organization_id != ctx.project.organization_id:
            raise ValidationFailed(
                f"User {user_id} is not a member of this organization", attr="approver_config"
            )
    for flag in ("allow_self_approve", "enabled"):
        if flag in data and not isinstance(data[flag], bool):
            raise ValidationFailed("Must be a valid boolean.", attr=flag)
    expiry = data.get("expiry_seconds", 1)
    if not isinstance(expiry, int) or isinstance(expiry, bool) or expiry < 1:
        raise ValidationFailed("expiry_seconds must be a positive integer", attr="expiry_seconds")


POLICY_FIELDS = ("action_key", "approver_config", "allow_self_approve", "enabled", "expiry_seconds")


@router.get("/approval_policies/", summary="List approval policies")
async def list_policies(
    request: Request, ctx: Annotated[ProjectContext, POLICY_READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    rows = list(await queries.policies_of(session, ctx.project_id))
    return paginated(
        request, len(rows), [policy_out(p) for p in rows[offset : offset + limit]], limit, offset
    )


@router.post("/approval_policies/", status_code=201, summary="Create an approval policy")
async def create_policy(
    body: Annotated[dict[str, Any], Body()], ctx: Annotated[ProjectContext, POLICY_WRITE], session: SessionDep
) -> dict[str, Any]:
    if "action_key" not in body:
        raise ValidationFailed("This field is required.", attr="action_key", code="required")
    await _validate_policy(session, ctx, body)
    policy = ApprovalPolicy(
        team_id=ctx.project_id,
        created_by_id=ctx.principal.user_id,
        **{k: body[k] for k in POLICY_FIELDS if k in body},
    )
    session.add(policy)
    await session.commit()
    return policy_out(policy)


async def _policy(session: AsyncSession, ctx: ProjectContext, policy_id: int) -> ApprovalPolicy:
    policy = await session.get(ApprovalPolicy, policy_id)
    if policy is None or policy.team_id != ctx.project_id:
        raise not_found()
    return policy


@router.get("/approval_policies/{policy_id}/", summary="Retrieve an approval policy")
async def get_policy(
    policy_id: int, ctx: Annotated[ProjectContext, POLICY_READ], session: SessionDep
) -> dict[str, Any]:
    return policy_out(await _policy(session, ctx, policy_id))


@router.patch("/approval_policies/{policy_id}/", summary="Update an approval policy")
async def update_policy(
    policy_id: int,
    body: Annotated[dict[str, Any], Body()],
    ctx: Annotated[ProjectContext, POLICY_WRITE],
    session: SessionDep,
) -> dict[str, Any]:
    policy = await _policy(session, ctx, policy_id)
    _check_may_govern(policy, ctx)
    await _validate_policy(session, ctx, body)
    for name in POLICY_FIELDS:
        if name in body:
            setattr(policy, name, body[name])
    policy.updated_at = utcnow()
    session.add(policy)
    await session.commit()
    return policy_out(policy)


@router.delete("/approval_policies/{policy_id}/", status_code=204, summary="Delete an approval policy")
async def delete_policy(
    policy_id: int, ctx: Annotated[ProjectContext, POLICY_WRITE], session: SessionDep
) -> Response:
    policy = await _policy(session, ctx, policy_id)
    _check_may_govern(policy, ctx)
    await session.delete(policy)
    await session.commit()
    return Response(status_code=204)


def _check_may_govern(policy: ApprovalPolicy, ctx: ProjectContext) -> None:
    """Changing, disabling or deleting an enabled policy takes the rights to decide under it:
    otherwise anyone held back by a policy could switch it off and go ahead."""
    if not policy.enabled:
        return
    user_id = _user_id(ctx)
    try:
        rules.check_may_govern(queries.policy_dict(policy), user_id=user_id)
    except DomainError as err:
        raise ApiError(403, "authentication_error", "permission_denied", err.detail) from None


# ---- change requests ------------------------------------------------------------------------


async def _request(session: AsyncSession, ctx: ProjectContext, cr_id: str) -> ChangeRequest:
    cr = await session.get(ChangeRequest, cr_id)
    if cr is None or cr.team_id != ctx.project_id:
        raise not_found()
    return cr


async def change_request_body(session: AsyncSession, cr: ChangeRequest, viewer: int | None) -> dict[str, Any]:
    return (await change_request_bodies(session, [cr], viewer))[0]


async def change_request_bodies(
    session: AsyncSession, requests: Sequence[ChangeRequest], viewer: int | None
) -> list[dict[str, Any]]:
    """A page of change requests: their decisions and people in one query each."""
    decisions = await queries.decisions_by_request(session, [cr.id for cr in requests])
    people = [cr.created_by_id for cr in requests] + [cr.applied_by_id for cr in requests]
    await accounts.preload_users(session, people)
    return [
        rules.change_request_out(await queries.request_dict(session, cr), decisions[cr.id], viewer)
        for cr in requests
    ]


@router.get("/change_requests/", summary="List change requests")
async def list_requests(
    request: Request, ctx: Annotated[ProjectContext, CR_READ], session: SessionDep
) -> dict[str, Any]:
    limit, offset = page_params(request)
    count, rows = await queries.requests_of(
        session, ctx.project_id, state=request.query_params.get("state"), limit=limit, offset=offset
    )
    results = await change_request_bodies(session, rows, ctx.principal.user_id)
    return paginated(request, count, results, limit, offset)


@router.get("/change_requests/{cr_id}/", summary="Retrieve a change request")
async def get_request(
    cr_id: str, ctx: Annotated[ProjectContext, CR_READ], session: SessionDep
) -> dict[str, Any]:
    return await change_request_body(session, await _request(session, ctx, cr_id), ctx.principal.user_id)


def _require_open(cr: ChangeRequest) -> None:
    if cr.state not in rules.OPEN_STATES:
        raise ValidationFailed(f"Change request is {cr.state}.")


@router.post("/change_requests/{cr_id}/approve/", summary="Approve a change request")
async def approve(
    cr_id: str,
    ctx: Annotated[ProjectContext, CR_WRITE],
    session: SessionDep,
    temporal: TemporalDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> dict[str, Any]:
    comment = check_string(
        "comment", (body or {}).get("comment"), max_length=10**6, allow_null=True, allow_blank=True
    )
    cr = await _request(session, ctx, cr_id)
    _require_open(cr)
    user_id = _user_id(ctx)
    _check(cr, user_id)
    decisions = await queries.decisions_of(session, cr.id)
    if not any(d["user_id"] == user_id and d["decision"] == "approved" for d in decisions):
        session.add(
            ChangeRequestApproval(
                change_request_id=cr.id, user_id=user_id, decision="approved", comment=comment
            )
        )
        await session.flush()
        decisions = await queries.decisions_of(session, cr.id)
    if rules.quorum_reached(cr.policy_snapshot, decisions):
        cr.state = "approved"
    cr.updated_at = utcnow()
    session.add(cr)
    await session.commit()
    if cr.state == "approved" and cr.experiment_id is not None:
        signal = ApprovalGranted(change_request_id=cr.id, approver_id=user_id, source="api")
        await signal_experiment(temporal, ctx.project_id, cr.experiment_id, "approval_granted", signal)
    elif cr.state == "approved" and cr.intent.get("operation") == FLAG_UPDATE:
        await apply_approved_flag_change(session, temporal, ctx, cr)
    return await change_request_body(session, cr, user_id)


def _user_id(ctx: ProjectContext) -> int:
    if ctx.principal.user_id is None:
        raise permission_denied("Only users can decide on change requests.")
    return ctx.principal.user_id


def _check(cr: ChangeRequest, user_id: int) -> None:
    try:
        rules.check_can_approve(
            cr.policy_snapshot, requester_id=cr.created_by_id, user_id=user_id, same_organization=True
        )
    except DomainError as err:
        raise ApiError(403, "authentication_error", "permission_denied", err.detail) from None


async def _close(
    session: AsyncSession, temporal: TemporalConnection, ctx: ProjectContext, cr: ChangeRequest, state: str
) -> dict[str, Any]:
    user_id = _user_id(ctx)
    cr.state, cr.updated_at = state, utcnow()
    session.add(cr)
    if state == "rejected":
        session.add(ChangeRequestApproval(change_request_id=cr.id, user_id=user_id, decision="rejected"))
    await session.commit()
    if cr.experiment_id is not None:
        closed = ChangeRequestClosed(change_request_id=cr.id, state=state, actor_id=user_id)  # type: ignore[arg-type]
        await signal_experiment(temporal, ctx.project_id, cr.experiment_id, "change_request_closed", closed)
    return await change_request_body(session, cr, user_id)


@router.post("/change_requests/{cr_id}/reject/", summary="Reject a change request")
async def reject(
    cr_id: str, ctx: Annotated[ProjectContext, CR_WRITE], session: SessionDep, temporal: TemporalDep
) -> dict[str, Any]:
    cr = await _request(session, ctx, cr_id)
    _require_open(cr)
    _check(cr, _user_id(ctx))
    return await _close(session, temporal, ctx, cr, "rejected")


@router.post("/change_requests/{cr_id}/cancel/", summary="Withdraw your own change request")
async def cancel(
    cr_id: str, ctx: Annotated[ProjectContext, CR_WRITE], session: SessionDep, temporal: TemporalDep
) -> dict[str, Any]:
    cr = await _request(session, ctx, cr_id)
    _require_open(cr)
    if cr.created_by_id != _user_id(ctx):
        raise permission_denied("Only the requester can cancel a change request.")
    return await _close(session, temporal, ctx, cr, "cancelled")
