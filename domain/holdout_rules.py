"""Holdout groups (reference §1.3 and §6): filter validation and the server-managed variant."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from domain.errors import ValidationFailed

MSG_FILTERS_REQUIRED = "Filters are required to create an holdout group"
MSG_ROLLOUT_MISSING = "Rollout percentage must be present."
MSG_ROLLOUT_RANGE = "Rollout percentage must be between 0 and 100."


def holdout_variant(holdout_id: int) -> str:
    return f"holdout-{holdout_id}"


def _rollout(group: Any) -> float | None:
    value = group.get("rollout_percentage") if isinstance(group, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def validate_holdout_filters(filters: Sequence[Any]) -> None:
    """The field validator (attr `filters`): every group carries a rollout percentage in 0..100.

    Upstream would crash on a non-numeric percentage; it is refused as missing instead.
    """
    for group in filters:
        value = _rollout(group)
        if value is None:
            raise ValidationFailed(MSG_ROLLOUT_MISSING, attr="filters")
        if value < 0 or value > 100:
            raise ValidationFailed(MSG_ROLLOUT_RANGE, attr="filters")


def require_filters(filters: Sequence[Any] | None) -> None:
    if not filters:
        raise ValidationFailed(MSG_FILTERS_REQUIRED, attr="filters")


def with_holdout_variant(holdout_id: int, filters: Sequence[Any]) -> list[dict[str, Any]]:
    """Every group's `variant` becomes `holdout-<id>`: flag evaluation serves that pseudo-variant."""
    variant = holdout_variant(holdout_id)
    return [{**dict(group), "variant": variant} for group in filters if isinstance(group, Mapping)]
