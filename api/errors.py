"""Every error leaves as PostHog's `{type, code, detail, attr}` body (drf-exceptions-hog)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, InterfaceError, OperationalError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from db.clickhouse.client import EventsUnavailable
from domain.errors import DomainError
from domain.failures import Failure, FailureDetails

log = logging.getLogger("flagship.api")

# How each failure of the contract (domain/failures.py) is answered: status and PostHog `type`.
# A failure whose error carries a body (approvals, policy conflicts) is answered with that body.
FAILURE_RESPONSES: dict[Failure, tuple[int, str]] = {
    Failure.VALIDATION: (400, "validation_error"),
    Failure.NOT_FOUND: (404, "invalid_request"),
    Failure.PERMISSION_DENIED: (403, "authentication_error"),
    Failure.CONFLICT: (409, "invalid_request"),
    Failure.APPROVAL_REQUIRED: (409, "invalid_request"),
    Failure.POLICY_CONFLICT: (400, "validation_error"),
    Failure.UNAVAILABLE: (503, "server_error"),
}


class ApiError(Exception):
    """An HTTP error with an explicit status and PostHog body fields."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        detail: str,
        attr: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.type, self.code, self.detail, self.attr = status, type_, code, detail, attr
        self.headers = headers


class RawError(Exception):
    """A response with a non-standard body, where PostHog itself answers so (e.g. `{"error": …}`)."""

    def __init__(self, status: int, body: dict[str, Any] | None) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def not_authenticated() -> ApiError:
    return ApiError(
        401, "authentication_error", "not_authenticated", "Authentication credentials were not provided."
    )


def authentication_failed(detail: str) -> ApiError:
    return ApiError(401, "authentication_error", "authentication_failed", detail)


def permission_denied(detail: str) -> ApiError:
    return ApiError(403, "authentication_error", "permission_denied", detail)


def not_found() -> ApiError:
    return ApiError(404, "invalid_request", "not_found", "Not found.")


def service_unavailable(detail: str) -> ApiError:
    return ApiError(503, "server_error", "service_unavailable", detail)


def throttled(wait_seconds: int) -> ApiError:
    """DRF's Throttled, in PostHog's body: 429 with Retry-After."""
    unit = "second" if wait_seconds == 1 else "seconds"
    return ApiError(
        429,
        "throttled_error",
        "throttled",
        f"Request was throttled. Expected available in {wait_seconds} {unit}.",
        headers={"Retry-After": str(wait_seconds)},
    )


def error_body(type_: str, code: str, detail: str, attr: str | None = None) -> dict[str, Any]:
    return {"type": type_, "code": code, "detail": detail, "attr": attr}


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=body, headers=headers)


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _json(exc.status, error_body(exc.type, exc.code, exc.detail, exc.attr), exc.headers)


async def _raw_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RawError)
    if exc.body is None:
        return Response(status_code=exc.status)
    return _json(exc.status, exc.body)


def failure_response(failure: Failure, detail: str, details: FailureDetails) -> ApiError | RawError:
    """The one answer to a refusal, whichever layer refused (a DomainError, or a Temporal failure)."""
    status, type_ = FAILURE_RESPONSES[failure]
    if details.body is not None:
        return RawError(status, details.body)
    if failure is Failure.NOT_FOUND:
        return ApiError(404, "invalid_request", "not_found", "Not found.")
    return ApiError(status, type_, details.code, detail, details.attr)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    details = FailureDetails(attr=exc.attr, code=exc.code, body=exc.body())
    answer = failure_response(exc.failure, exc.detail, details)
    if isinstance(answer, RawError):
        return await _raw_error(request, answer)
    return await _api_error(request, answer)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return _json(404, error_body("invalid_request", "not_found", "Not found."))
    if exc.status_code == 405:
        method = _request.method
        return _json(
            405,
            error_body("invalid_request", "method_not_allowed", f'Method "{method}" not allowed.'),
            headers=dict(exc.headers or {}),
        )
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
    type_ = "invalid_request" if exc.status_code < 500 else "server_error"
    return _json(exc.status_code, error_body(type_, "error", detail))


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first: dict[str, Any] = (
        dict(errors[0]) if errors else {"type": "value_error", "loc": (), "msg": "Invalid input."}
    )
    if tuple(first.get("loc", ()))[:1] == ("path",):
        # `/experiments/abc/`: no object has that id, so DRF's lookup answers 404.
        return _json(404, error_body("invalid_request", "not_found", "Not found."))
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        reason = ctx.get("error", "Expecting value")
        return _json(400, error_body("invalid_request", "parse_error", f"JSON parse error - {reason}"))
    code, detail = drf_message(first)
    return _json(400, error_body("validation_error", code, detail, error_attr(first.get("loc", ()))))


def error_attr(loc: Any) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return "__".join(parts) or None


_TYPE_NAMES = {dict: "dict", list: "list", str: "str", int: "int", float: "float", bool: "bool"}


def drf_message(error: Any) -> tuple[str, str]:
    """Translate a pydantic error into DRF's code and wording, which PostHog clients match on."""
    kind = str(error.get("type", ""))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "required", "This field is required."
    if value is None and kind.endswith("_type"):
        return "null", "This field may not be null."
    table: dict[str, tuple[str, str]] = {
        "string_type": ("invalid_input", "Not a valid string."),
        "int_type": ("invalid_input", "A valid integer is required."),
        "int_parsing": ("invalid_input", "A valid integer is required."),
        "int_from_float": ("invalid_input", "A valid integer is required."),
        "float_type": ("invalid_input", "A valid number is required."),
        "float_parsing": ("invalid_input", "A valid number is required."),
        "bool_type": ("invalid_input", "Must be a valid boolean."),
        "bool_parsing": ("invalid_input", "Must be a valid boolean."),
        "list_type": ("not_a_list", f'Expected a list of items but got type "{_type_name(value)}".'),
        "dict_type": ("not_a_dict", f'Expected a dictionary of items but got type "{_type_name(value)}".'),
        "model_type": (
            "invalid_input",
            f"Invalid data. Expected a dictionary, but got {_type_name(value)}.",
        ),
        "string_too_long": (
            "max_length",
            f"Ensure this field has no more than {ctx.get('max_length')} characters.",
        ),
        "literal_error": ("invalid_choice", f'"{value}" is not a valid choice.'),
        "enum": ("invalid_choice", f'"{value}" is not a valid choice.'),
        "datetime_from_date_parsing": ("invalid_input", _DATETIME_MSG),
        "datetime_parsing": ("invalid_input", _DATETIME_MSG),
        "datetime_type": ("invalid_input", _DATETIME_MSG),
    }
    if kind in table:
        return table[kind]
    message = str(error.get("msg", "Invalid input."))
    return "invalid_input", message.removeprefix("Value error, ")


_DATETIME_MSG = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


async def _database_error(_request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__)
    return _json(
        503,
        error_body("server_error", "service_unavailable", "The database is unavailable. Try again shortly."),
    )


def _out_of_range(exc: Exception) -> bool:
    """A number the database cannot store (SQLite: OverflowError; PostgreSQL: numeric out of range)."""
    if isinstance(exc, OverflowError):
        return True
    if isinstance(exc, StatementError) and isinstance(exc.orig, OverflowError):
        return True
    return isinstance(exc, DataError) and "out of range" in str(exc.orig)


async def _statement_error(request: Request, exc: Exception) -> Response:
    """A lookup by an id no row can have (20 digits) finds nothing; as a written value it is invalid."""
    if not _out_of_range(exc):
        return await _unexpected(request, exc)
    if request.method in ("GET", "HEAD"):
        return _json(404, error_body("invalid_request", "not_found", "Not found."))
    return _json(400, error_body("validation_error", "invalid_input", "A valid integer is required."))


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _json(500, error_body("server_error", "error", "A server error occurred."))


async def _events_unavailable(_request: Request, exc: Exception) -> Response:
    log.warning("events store unavailable: %s", exc)
    return _json(
        503,
        error_body(
            "server_error", "service_unavailable", "The events store is unavailable. Try again shortly."
        ),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RawError, _raw_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _database_error)
    app.add_exception_handler(StatementError, _statement_error)  # after OperationalError, its subclass
    app.add_exception_handler(OverflowError, _statement_error)  # raised unwrapped by some lookups
    app.add_exception_handler(PoolTimeoutError, _database_error)
    app.add_exception_handler(InterfaceError, _database_error)
    app.add_exception_handler(EventsUnavailable, _events_unavailable)  # EVENTS_BACKEND=clickhouse
    app.add_exception_handler(Exception, _unexpected)
