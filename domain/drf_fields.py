"""DRF's coercion rules for a few serializer fields PostHog's clients rely on (pure functions).

PostHog validates with Django REST framework, whose fields accept more than JSON's own types (a
BooleanField takes "true" and 1) and word their errors in a fixed way. These give the same
answers, and keep values the database cannot hold (a 20-digit id) from ever reaching it.
"""

from __future__ import annotations

from typing import Any

from domain.errors import ValidationFailed

# The largest primary key either database stores (a signed 64-bit integer).
MAX_PK = 2**63 - 1

_TRUE = frozenset({"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1"})
_FALSE = frozenset(
    {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0"}
)


def boolean(value: Any, attr: str) -> bool:
    """A BooleanField: true/false, their usual spellings, 1 and 0."""
    if value is True or value is False:
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value in _TRUE:
        return True
    if isinstance(value, str) and value in _FALSE:
        return False
    raise ValidationFailed("Must be a valid boolean.", attr=attr, code="invalid_input")


def primary_key(value: Any) -> int | None:
    """A PrimaryKeyRelatedField's lookup value: an int or a string of digits; None when no row can
    have it (not a number a key can be, or beyond what the database stores)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value <= MAX_PK:
        return None
    return value
