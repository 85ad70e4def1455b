"""Which flags can back an experiment (`GET /experiments/eligible_feature_flags/`, reference §4.10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.flag_rules import flag_variants

ELIGIBLE_ORDER_FIELDS = ("created_at", "-created_at", "key", "-key", "name", "-name")
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
TRUTHY_PARAMS = ("true", "1", "yes")


class InvalidPaging(ValueError):
    """limit/offset are not integers: PostHog answers with a plain `{"error": ...}` body."""


def is_eligible_flag(filters: Mapping[str, Any] | None) -> bool:
    """Multivariate with at least two variants, the first keyed exactly `control`."""
    variants = flag_variants(filters)
    if len(variants) < 2:
        return False
    first = variants[0]
    return isinstance(first, Mapping) and first.get("key") == "control"


def paging(limit: str | None, offset: str | None) -> tuple[int, int]:
    """(limit, offset): limit defaults to 20 and is capped at 100, offset is at least 0."""
    try:
        parsed_limit = int(limit) if limit is not None else DEFAULT_LIMIT
        parsed_offset = int(offset) if offset is not None else 0
    except ValueError:
        raise InvalidPaging("Invalid limit or offset") from None
    return max(min(parsed_limit, MAX_LIMIT), 0), max(parsed_offset, 0)


def has_contexts_wanted(raw: str) -> bool:
    return raw.lower() in TRUTHY_PARAMS
