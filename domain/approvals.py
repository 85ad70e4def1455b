"""Approval rules for flag changes made by experiment actions (PostHog's posthog/approvals).

Pure: which action key an experiment operation implies, which policy applies, who may approve,
when the quorum is reached, and the change-request and 409 bodies PostHog answers with.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import PermissionDenied, ValidationFailed
from domain.failures import Failure

ACTION_KEYS = ("feature_flag.update", "feature_flag.enable", "feature_flag.disable")
OPEN_STATES = ("pending", "approved")
FINAL_STATES = ("applied", "rejected", "cancelled", "expired", "failed")

# The flag change each experiment operation makes (launch and resume activate, pause
# deactivates, ship rewrites the variant rollout); end/reset/archive leave the flag alone.
OPERATION_ACTION_KEYS = {
    "launch": "feature_flag.enable",
    "resume": "feature_flag.enable",
    "pause": "feature_flag.disable",
    "ship_variant": "feature_flag.update",
}
PENDING_MESSAGE = "A pending approval request already exists for this action"
DEFAULT_MESSAGE = "Approval required"


def action_key_for(operation: str) -> str | None:
    return OPERATION_ACTION_KEYS.get(operation)


def _rollout(filters: Mapping[str, Any] | None) -> tuple[Any, ...]:
    """What `feature_flag.update` guards: who is released to, and in which split (PostHog gates
    rollout-percentage changes in groups, super_groups, holdout groups and variants)."""
    filters = filters if isinstance(filters, Mapping) else {}

    def percentages(groups: Any) -> tuple[Any, ...]:
        if not isinstance(groups, list):
            return ()
        return tuple(g.get("rollout_percentage") if isinstance(g, Mapping) else g for g in groups)

    multivariate = filters.get("multivariate")
    variants = multivariate.get("variants") if isinstance(multivariate, Mapping) else None
    split = tuple(
        (v.get("key"), v.get("rollout_percentage")) for v in variants or () if isinstance(v, Mapping)
    )
    return (
        percentages(filters.get("groups")),
        percentages(filters.get("super_groups")),
        percentages(filters.get("holdout_groups")),
        json.dumps(filters.get("holdout"), sort_keys=True, default=str),
        split,
    )


def flag_change_action_keys(
    active: bool, filters: Mapping[str, Any] | None, changes: Mapping[str, Any]
) -> list[str]:
    """The approval action keys a flag write implies (every path that changes a flag asks this)."""
    keys = []
    if "active" in changes and bool(changes["active"]) != bool(active):
        keys.append("feature_flag.enable" if changes["active"] else "feature_flag.disable")
    if "filters" in changes and _rollout(changes["filters"]) != _rollout(filters):
        keys.append("feature_flag.update")
    return keys


def gating_policy(
    policies: Sequence[Mapping[str, Any]], action_keys: Sequence[str]
) -> tuple[str, Mapping[str, Any]] | None:
    """The one enabled policy that gates a change with these action keys, with its key; several
    policies for one change are PostHog's policy_conflict (split the change)."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    for key in action_keys:
        policy = matching_policy(policies, key)
        if policy is not None:
            found.append((key, policy))
    if len(found) > 1:
        raise PolicyConflict([int(policy["id"]) for _, policy in found])
    return found[0] if found else None


class PolicyConflict(ValidationFailed):
    """Several policies match one change: PostHog's 400 `policy_conflict` (a plain body)."""

    failure = Failure.POLICY_CONFLICT

    def __init__(self, policy_ids: Sequence[int]) -> None:
        super().__init__("This change matches multiple approval policies", code="policy_conflict")
        self.policy_ids = list(policy_ids)

    def body(self) -> dict[str, Any]:
        return {
            "code": "policy_conflict",
            "error": "This change matches multiple approval policies",
            "conflicting_policies": self.policy_ids,
            "guidance": "Split your changes into separate API calls to address each policy independently",
        }


def matching_policy(policies: Sequence[Mapping[str, Any]], action_key: str) -> Mapping[str, Any] | None:
    """The one enabled policy for this action key, None when there is none."""
    matches = [p for p in policies if p.get("enabled", True) and p.get("action_key") == action_key]
    if len(matches) > 1:
        raise PolicyConflict([int(p["id"]) for p in matches])
    return matches[0] if matches else None


def operation_intent(operation: str, experiment_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
    """What a change request records of the operation it holds back: enough to apply it."""
    return {
        "operation": operation,
        "experiment_id": experiment_id,
        **{key: fields.get(key) for key in INTENT_FIELDS},
    }


INTENT_FIELDS = (
    "variant_key",
    "release_to_everyone",
    "conclusion",
    "conclusion_comment",
    "conclusion_provided",
)


def intent_hash(intent: Mapping[str, Any]) -> str:
    """Identical requests have identical intents: the key for `change_request_pending`."""
    return hashlib.sha256(json.dumps(intent, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def quorum(policy_snapshot: Mapping[str, Any]) -> int:
    raw = (policy_snapshot.get("approver_config") or {}).get("quorum", 1)
    return max(1, int(raw))


def approvers(policy_snapshot: Mapping[str, Any]) -> list[int]:
    return [int(u) for u in (policy_snapshot.get("approver_config") or {}).get("users") or []]


def check_can_approve(
    policy_snapshot: Mapping[str, Any], *, requester_id: int | None, user_id: int, same_organization: bool
) -> None:
    if not same_organization:
        raise PermissionDenied("Only members of the organization can approve this change request.")
    if user_id == requester_id and not policy_snapshot.get("allow_self_approve", False):
        raise PermissionDenied("You cannot approve your own change request.")
    allowed = approvers(policy_snapshot)
    if allowed and user_id not in allowed and user_id != requester_id:
        raise PermissionDenied("You are not an approver for this change request.")


def check_may_govern(policy: Mapping[str, Any], *, user_id: int) -> None:
    """Who may change or remove an enabled policy: whoever may approve under it (its approvers, or
    anyone in the organization when it names none)."""
    allowed = approvers(policy)
    if allowed and user_id not in allowed:
        raise PermissionDenied(
            "Only this policy's approvers can change, disable or delete it while it is enabled."
        )


def approved_count(decisions: Sequence[Mapping[str, Any]]) -> int:
    """Approving twice counts once: distinct approvers only."""
    return len({d.get("user_id") for d in decisions if d.get("decision") == "approved"})


def quorum_reached(policy_snapshot: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]]) -> bool:
    return approved_count(decisions) >= quorum(policy_snapshot)


def required_approvers(policy_snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {"quorum": quorum(policy_snapshot), "users": approvers(policy_snapshot)}


def change_request_out(
    cr: Mapping[str, Any], decisions: Sequence[Mapping[str, Any]], viewer_id: int | None
) -> dict[str, Any]:
    """PostHog's ChangeRequest serializer, for the viewer `viewer_id`."""
    state = cr["state"]
    snapshot = cr.get("policy_snapshot") or {}
    requester = (cr.get("created_by") or {}).get("id")
    mine = next((d for d in decisions if d.get("user_id") == viewer_id), None)
    may_approve = state == "pending" and viewer_id is not None and mine is None
    if may_approve and (viewer_id == requester and not snapshot.get("allow_self_approve", False)):
        may_approve = False
    if may_approve and approvers(snapshot) and viewer_id not in approvers(snapshot):
        may_approve = False
    return {
        **{k: cr.get(k) for k in _CR_FIELDS},
        "validation_status": "valid",
        "validation_errors": None,
        "validated_at": cr.get("created_at"),
        "approvals": list(decisions),
        "can_approve": may_approve,
        "can_cancel": state in OPEN_STATES and viewer_id == requester,
        "is_requester": viewer_id is not None and viewer_id == requester,
        "user_decision": mine.get("decision") if mine else None,
    }


_CR_FIELDS = (
    "id", "action_key", "action_version", "resource_type", "resource_id", "intent", "intent_display",
    "policy_snapshot", "state", "created_by", "applied_by", "created_at", "updated_at", "expires_at",
    "applied_at", "apply_error", "result_data",
)  # fmt: skip


def approval_required_body(cr_out: Mapping[str, Any], *, pending: bool) -> dict[str, Any]:
    """The 409 of ApprovalHandlingMixin (reference §5)."""
    message = PENDING_MESSAGE if pending else DEFAULT_MESSAGE
    code = "change_request_pending" if pending else "approval_required"
    return {
        "code": code,
        "status": code,
        "detail": message,
        "message": message,
        "resource_type": "feature_flag",
        "resource_id": cr_out.get("resource_id"),
        "change_request_id": cr_out["id"],
        "change_request": dict(cr_out),
        "required_approvers": {} if pending else required_approvers(cr_out.get("policy_snapshot") or {}),
    }
