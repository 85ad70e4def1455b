"""Serializer-level field checks of ExperimentSerializer, in DRF's words and field order.

The request body is read as raw JSON so that the first failing field, its `attr` and DRF's exact
message come out as PostHog's do (a pydantic model would report differently).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from domain.drf_fields import boolean
from domain.errors import ValidationFailed
from domain.scheduling import CONCLUSIONS

TYPES = ("web", "product")
DATETIME_MESSAGE = (
    "Datetime has wrong format. Use one of these formats instead: "
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


def _fail(attr: str, detail: str, code: str = "invalid_input") -> ValidationFailed:
    return ValidationFailed(detail, attr=attr, code=code)


def check_string(attr: str, value: Any, *, max_length: int, allow_null: bool, allow_blank: bool) -> Any:
    """DRF's CharField: numbers become strings, surrounding whitespace is trimmed, and the value
    comes back normalized."""
    if value is None:
        if not allow_null:
            raise _fail(attr, "This field may not be null.", "null")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(attr, "Not a valid string.")
    text = str(value).strip()
    if not text:
        if not allow_blank:
            raise _fail(attr, "This field may not be blank.", "blank")
        return ""
    if len(text) > max_length:
        raise _fail(attr, f"Ensure this field has no more than {max_length} characters.", "max_length")
    if "\x00" in text:
        raise _fail(attr, "Null characters are not allowed.", "null_characters_not_allowed")
    return text


def check_choice(attr: str, value: Any, choices: tuple[str, ...], *, allow_null: bool = True) -> Any:
    if value is None:
        if not allow_null:
            raise _fail(attr, "This field may not be null.", "null")
        return None
    if value not in choices:
        raise _fail(attr, f'"{value}" is not a valid choice.', "invalid_choice")
    return value


def parse_datetime(attr: str, value: Any) -> datetime | None:
    """DRF DateTimeField: ISO 8601; naive values are read as UTC (PostHog behaviour, ref §13)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(attr, DATETIME_MESSAGE)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise _fail(attr, DATETIME_MESSAGE) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def check_datetime(attr: str, value: Any) -> Any:
    parse_datetime(attr, value)
    return value  # as sent: create and PATCH parse it where they use it


def check_bool(attr: str, value: Any) -> bool:
    """DRF's BooleanField: "true", 1 and the like are booleans too; null is not one."""
    if value is None:
        raise _fail(attr, "This field may not be null.", "null")
    return boolean(value, attr)


def check_json_object(attr: str, value: Any, *, allow_null: bool = True) -> Any:
    if value is None and allow_null:
        return None
    if not isinstance(value, dict):
        raise _fail(
            attr, f'Expected a dictionary of items but got type "{type(value).__name__}".', "not_a_dict"
        )
    return value


def check_json_list(attr: str, value: Any) -> Any:
    if not isinstance(value, list):
        raise _fail(attr, f'Expected a list of items but got type "{type(value).__name__}".', "not_a_list")
    return value


def check_int(attr: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).lstrip("-").isdigit():
        raise _fail(
            attr, f"Incorrect type. Expected pk value, received {type(value).__name__}.", "incorrect_type"
        )
    return value


# A check returns the value to store: DRF hands the serializer the coerced value (strings trimmed,
# numbers as text, "true" as True); the others come back as sent.
FieldCheck = Callable[[str, Any], Any]

# DRF validates declared fields in declaration order; the first error is the one reported.
FIELD_CHECKS: tuple[tuple[str, FieldCheck], ...] = (
    ("name", lambda a, v: check_string(a, v, max_length=400, allow_null=False, allow_blank=False)),
    ("description", lambda a, v: check_string(a, v, max_length=3000, allow_null=True, allow_blank=True)),
    ("start_date", check_datetime),
    ("end_date", check_datetime),
    ("feature_flag_key", lambda a, v: check_string(a, v, max_length=400, allow_null=False, allow_blank=True)),
    ("holdout_id", check_int),
    ("parameters", check_json_object),
    ("secondary_metrics", lambda a, v: check_json_list(a, v) if v is not None else None),
    ("filters", check_json_object),
    ("archived", check_bool),
    ("deleted", check_bool),
    ("type", lambda a, v: check_choice(a, v, TYPES)),
    ("stats_config", check_json_object),
    ("conclusion", lambda a, v: check_choice(a, v, CONCLUSIONS)),
    (
        "conclusion_comment",
        lambda a, v: check_string(a, v, max_length=10**6, allow_null=True, allow_blank=True),
    ),
    ("primary_metrics_ordered_uuids", lambda a, v: check_json_list(a, v) if v is not None else None),
    ("secondary_metrics_ordered_uuids", lambda a, v: check_json_list(a, v) if v is not None else None),
    ("only_count_matured_users", check_bool),
    ("allow_unknown_events", check_bool),
    ("update_feature_flag_params", check_bool),
)

REQUIRED_ON_CREATE = ("name", "feature_flag_key")


def check_fields(body: dict[str, Any], *, creating: bool) -> None:
    """Validate in DRF's order, and store the coerced strings and booleans back into `body`."""
    if creating:
        for name in REQUIRED_ON_CREATE:
            if name not in body:
                raise _fail(name, "This field is required.", "required")
    for name, check in FIELD_CHECKS:
        if name in body:
            body[name] = check(name, body[name])


def check_body_is_object(body: Any) -> dict[str, Any]:
    """The request body as DRF's serializers see it: an empty body is `{}`."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise ValidationFailed(f"Invalid data. Expected a dictionary, but got {type(body).__name__}.")
    return body
