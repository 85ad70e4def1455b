"""`create_from_prompt` body checks, worded as DRF's CreateFromPromptInputSerializer words them.

DRF validates fields in declaration order and the error handler reports the first failure, with a
list item's errors under `<field>__<index>`; this module does the same, so `attr` and `code` match.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.errors import ValidationFailed
from domain.prompt_experiments import MAX_VERSIONS, MIN_VERSIONS, TEMPLATE_NAMES

_DECIMAL_ZEROS = re.compile(r"\.0*\s*$")  # DRF IntegerField accepts "3.0"


@dataclass(frozen=True)
class PromptExperimentInput:
    prompt_name: str
    versions: list[int]
    templates: list[str]
    name: str | None
    feature_flag_key: str | None
    description: str | None


def _fail(attr: str, detail: str, code: str = "invalid_input") -> ValidationFailed:
    return ValidationFailed(detail, attr=attr, code=code)


def _char(attr: str, value: Any, *, allow_blank: bool) -> str:
    if value is None:
        raise _fail(attr, "This field may not be null.", "null")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(attr, "Not a valid string.")
    text = str(value).strip()
    if not text and not allow_blank:
        raise _fail(attr, "This field may not be blank.", "blank")
    return text


def _integer(attr: str, value: Any) -> int:
    if value is None:
        raise _fail(attr, "This field may not be null.", "null")
    try:
        number = int(_DECIMAL_ZEROS.sub("", str(value)))
    except ValueError:
        raise _fail(attr, "A valid integer is required.") from None
    if number < 1:
        raise _fail(attr, "Ensure this value is greater than or equal to 1.", "min_value")
    return number


def _choice(attr: str, value: Any) -> str:
    if value is None:
        raise _fail(attr, "This field may not be null.", "null")
    if str(value) not in TEMPLATE_NAMES:
        raise _fail(attr, f'"{value}" is not a valid choice.', "invalid_choice")
    return str(value)


def _list(attr: str, value: Any, child: Callable[[str, Any], Any], min_len: int, max_len: int) -> list[Any]:
    if value is None:
        raise _fail(attr, "This field may not be null.", "null")
    if isinstance(value, str | Mapping) or not isinstance(value, list):
        raise _fail(attr, f'Expected a list of items but got type "{type(value).__name__}".', "not_a_list")
    items = [child(f"{attr}__{index}", item) for index, item in enumerate(value)]
    if len(items) < min_len:
        raise _fail(attr, f"Ensure this field has at least {min_len} elements.", "min_length")
    if len(items) > max_len:
        raise _fail(attr, f"Ensure this field has no more than {max_len} elements.", "max_length")
    if len(set(items)) != len(items):
        raise _fail(attr, f"{attr} must not contain duplicates.")
    return items


def _required(body: Mapping[str, Any], attr: str) -> Any:
    if attr not in body:
        raise _fail(attr, "This field is required.", "required")
    return body[attr]


def _optional(body: Mapping[str, Any], attr: str) -> str | None:
    return _char(attr, body[attr], allow_blank=True) if attr in body else None


def parse_prompt_experiment_input(body: Mapping[str, Any]) -> PromptExperimentInput:
    prompt_name = _char("prompt_name", _required(body, "prompt_name"), allow_blank=False)
    versions = _list("versions", _required(body, "versions"), _integer, MIN_VERSIONS, MAX_VERSIONS)
    templates = _list("templates", _required(body, "templates"), _choice, 1, len(TEMPLATE_NAMES))
    return PromptExperimentInput(
        prompt_name=prompt_name,
        versions=versions,
        templates=templates,
        name=_optional(body, "name"),
        feature_flag_key=_optional(body, "feature_flag_key"),
        description=_optional(body, "description"),
    )


def missing_versions_error(prompt_name: str, missing: list[int]) -> ValidationFailed:
    return _fail("versions", f"Versions not found for prompt {prompt_name!r}: {missing}")


def flag_key_taken_error(key: str) -> ValidationFailed:
    return _fail(
        "feature_flag_key",
        f"Feature flag {key!r} already exists for this team. "
        "Pick a different key, or omit this field to auto-generate one.",
    )
