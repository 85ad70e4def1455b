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


class Abandoned(DomainError):
    """The caller of this change gave up and was told it was not applied (503): it never will be."""

    kind = "unavailable"

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
