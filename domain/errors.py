"""Domain errors: what went wrong, in PostHog's words, independent of HTTP or Temporal.

The API maps these onto PostHog's `{type, code, detail, attr}` body (api/errors.py); workflow
validators turn them into `ApplicationError(type=...)` so the same message reaches the caller
through a Temporal update.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: `detail` is the exact user-facing message."""

    kind = "validation"

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "invalid_input") -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        self.code = code


class ValidationFailed(DomainError):
    """400 `validation_error`."""

    kind = "validation"


class NotFound(DomainError):
    """404 `invalid_request` / `not_found`."""

    kind = "not_found"

    def __init__(
        self, detail: str = "Not found.", *, attr: str | None = None, code: str = "not_found"
    ) -> None:
        super().__init__(detail, attr=attr, code=code)


class PermissionDenied(DomainError):
    """403 `authentication_error` / `permission_denied`."""

    kind = "permission_denied"

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "permission_denied") -> None:
        super().__init__(detail, attr=attr, code=code)


class Conflict(DomainError):
    """409: another transition is in flight, or a resource is in a conflicting state."""

    kind = "conflict"

    def __init__(self, detail: str, *, attr: str | None = None, code: str = "conflict") -> None:
        super().__init__(detail, attr=attr, code=code)
