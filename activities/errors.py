"""Domain errors leave activities as non-retryable ApplicationErrors the gateway can map back."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from domain.errors import DomainError

DOMAIN_ERROR_TYPES = {
    "validation": "ValidationFailed",
    "not_found": "NotFound",
    "permission_denied": "PermissionDenied",
    "conflict": "Conflict",
    "unavailable": "Unavailable",
}


def to_application_error(err: DomainError, snapshot: dict[str, Any] | None = None) -> ApplicationError:
    """A precondition that fails against the database will fail again: never retry it."""
    body = getattr(err, "body", None)
    if callable(body):  # errors PostHog answers with a plain body (policy_conflict)
        return ApplicationError(
            err.detail,
            {"attr": None, "code": err.code, "body": body()},
            type="PolicyConflict",
            non_retryable=True,
        )
    return ApplicationError(
        err.detail,
        {"attr": err.attr, "code": err.code, "snapshot": snapshot},
        type=DOMAIN_ERROR_TYPES.get(err.kind, "ValidationFailed"),
        non_retryable=True,
    )
