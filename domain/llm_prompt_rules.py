"""LLM prompts (PostHog `llm_analytics`): name and payload rules, version publishing."""

from __future__ import annotations

import json
import re
from typing import Any

from domain.errors import ValidationFailed

RESERVED_NAMES = frozenset({"new"})
NAME_RE = re.compile(r"^[a-zA-Z0-9_-]+$")
NAME_MAX_LENGTH = 255
MAX_PAYLOAD_BYTES = 1_000_000
MSG_NAME_TAKEN = "A prompt with this name already exists."
MSG_CONFLICT = "The prompt changed since you opened it. Reload the latest version and try again."


def validate_prompt_name(name: Any) -> str:
    if name is None:
        raise ValidationFailed("This field may not be null.", attr="name", code="null")
    if not isinstance(name, str):
        raise ValidationFailed("Not a valid string.", attr="name")
    value = name.strip()
    if not value:
        raise ValidationFailed("This field may not be blank.", attr="name", code="blank")
    if len(value) > NAME_MAX_LENGTH:
        raise ValidationFailed(
            f"Ensure this field has no more than {NAME_MAX_LENGTH} characters.",
            attr="name",
            code="max_length",
        )
    if value.lower() in RESERVED_NAMES:
        raise ValidationFailed(
            "'new' is a reserved name and cannot be used.", attr="name", code="reserved_name"
        )
    if not NAME_RE.match(value):
        raise ValidationFailed(
            "Only letters, numbers, hyphens (-) and underscores (_) are allowed.",
            attr="name",
            code="invalid_name",
        )
    return value


def validate_prompt_payload(prompt: Any) -> Any:
    """A JSON value (string or structure), at most 1 MB once compactly encoded."""
    if prompt is None:
        raise ValidationFailed("This field may not be null.", attr="prompt", code="null")
    size = len(json.dumps(prompt, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_PAYLOAD_BYTES:
        raise ValidationFailed(
            f"Prompt payload must be {MAX_PAYLOAD_BYTES} bytes or fewer.", attr="prompt", code="max_size"
        )
    return prompt


def validate_base_version(value: Any) -> int:
    if value is None:
        raise ValidationFailed("This field may not be null.", attr="base_version", code="null")
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise ValidationFailed("A valid integer is required.", attr="base_version")
    number = int(value)
    if number < 1:
        raise ValidationFailed(
            "Ensure this value is greater than or equal to 1.", attr="base_version", code="min_value"
        )
    return number
