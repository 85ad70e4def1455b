"""Domain errors: what went wrong, in PostHog's words, independent of HTTP or Temporal.

The API maps these onto PostHog's `{type, code, detail, attr}` body (api/errors.py); workflow
validators turn them into `ApplicationError(type=...)` so the same message reaches the caller
through a Temporal update.
"""

from __future__ import annotations

from typing import Any, ClassVar

from domain.failures import Failure


class DomainError(Exception):
    """Base class: `detail` is the exact user-facing message, `failure` how every layer answers."""

    failure: ClassVar[Failure] = Failure.VALIDATION

    def body(self) -> dict[str, Any] | None:
        """A body PostHog answers instead of `{type, code, detail, attr}`, if any."""
        return None

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "invalid_input") -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        self.code = code


class ValidationFailed(DomainError):
    """400 `validation_error`."""

    failure = Failure.VALIDATION


class NotFound(DomainError):
    """404 `invalid_request` / `not_found`."""

    failure = Failure.NOT_FOUND

    def __init__(
        self, detail: str = "Not found.", *, attr: str | None = None, code: str = "not_found"
    ) -> None:
        super().__init__(detail, attr=attr, code=code)


class PermissionDenied(DomainError):
    """403 `authentication_error` / `permission_denied`."""

    failure = Failure.PERMISSION_DENIED

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "permission_denied") -> None:
        super().__init__(detail, attr=attr, code=code)


class Conflict(DomainError):
    """409: another transition is in flight, or a resource is in a conflicting state."""

    failure = Failure.CONFLICT

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "conflict") -> None:
        super().__init__(detail, attr=attr, code=code)


class Abandoned(DomainError):
    """The caller of this change gave up and was told it was not applied (503): it never will be."""

    failure = Failure.UNAVAILABLE

    def __init__(
        self,
        detail: str = (
            "This change was given up on before it could be applied, and was not applied. "
            "Send it again with a new Idempotency-Key."
        ),
        *,
        attr: str | None = None,
        code: str = "abandoned",
    ) -> None:
        super().__init__(detail, attr=attr, code=code)


class Unavailable(DomainError):
    """503: the change was not applied (a deadline passed, a dependency is down); send it again."""

    failure = Failure.UNAVAILABLE

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "service_unavailable") -> None:
        super().__init__(detail, attr=attr, code=code)


class ApprovalRequired(DomainError):
    """409 with PostHog's approval body: the change waits in a change request."""

    failure = Failure.APPROVAL_REQUIRED

    def __init__(self, approval_body: dict[str, Any]) -> None:
        super().__init__(approval_body["detail"], code=approval_body["code"])
        self.approval_body = approval_body

    def body(self) -> dict[str, Any]:
        return self.approval_body
