"""Domain errors as Temporal failures: the one mapper (domain/failures.py has the contract).

Activities raise them non-retryable (a refusal would fail again); workflow validators raise the
same shape, so the API reads one kind of failure whichever layer refused."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from domain.errors import DomainError
from domain.failures import FailureDetails


def to_application_error(err: DomainError, snapshot: dict[str, Any] | None = None) -> ApplicationError:
    details = FailureDetails(attr=err.attr, code=err.code, body=err.body(), snapshot=snapshot)
    approval = err.body() if err.failure.value == "ApprovalRequired" else None
    if approval is not None:
        change = approval.get("change_request") or {}
        details.change_request_id = approval.get("change_request_id")
        details.expires_at = change.get("expires_at")
        details.pending = approval.get("code") == "change_request_pending"
    return ApplicationError(
        err.detail, details.model_dump(mode="json"), type=err.failure.value, non_retryable=True
    )
