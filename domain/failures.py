"""The failure contract: why a change was refused, the same in every layer.

A `DomainError` names its `Failure`; activities and workflow validators turn it into a Temporal
`ApplicationError` whose type is the failure's value and whose details are one `FailureDetails`
(activities/errors.py); the API turns either back into PostHog's answer with one table
(api/errors.py). Adding a kind of failure means a member here and a row in that table.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel


class Failure(StrEnum):
    VALIDATION = "ValidationFailed"
    NOT_FOUND = "NotFound"
    PERMISSION_DENIED = "PermissionDenied"
    CONFLICT = "Conflict"
    APPROVAL_REQUIRED = "ApprovalRequired"  # PostHog's 409 with the change request
    POLICY_CONFLICT = "PolicyConflict"  # several approval policies match one change
    UNAVAILABLE = "Unavailable"  # not applied, and never will be; the caller may send it again


# Each of these fails again the same way: an activity that raised one is never retried.
NON_RETRYABLE: tuple[str, ...] = tuple(failure.value for failure in Failure)


class FailureDetails(BaseModel):
    """What a refusal carries besides its message (the ApplicationError's one detail)."""

    attr: str | None = None
    code: str = "invalid_input"
    # A body PostHog answers instead of `{type, code, detail, attr}` (approvals, policy conflicts).
    body: dict[str, Any] | None = None
    # The row's truth (domain.experiment_messages.Truth as JSON) when a precondition failed
    # against the database: the workflow adopts it.
    snapshot: dict[str, Any] | None = None
    # ApprovalRequired: the change request the workflow keeps waiting for.
    change_request_id: str | None = None
    expires_at: str | None = None
    pending: bool = False

    @classmethod
    def of(cls, details: Sequence[Any]) -> FailureDetails:
        """Read back from a failure's details (lenient: anything else gives the defaults)."""
        first = details[0] if details else None
        return cls.model_validate(first) if isinstance(first, dict) else cls()
