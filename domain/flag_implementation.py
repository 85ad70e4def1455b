"""`requires_flag_implementation/` (reference §4.11): do the metric's events already carry flag
properties? Reads the legacy insight filter (`events`, `actions`) the endpoint is called with."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

LOOKBACK_DAYS = 7
DEFAULT_SAMPLE = 20
FLAG_PROPERTY_PREFIX = "$feature/"


def _entities(raw: str | None) -> list[Mapping[str, Any]]:
    if not raw:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        return []
    return [item for item in parsed if isinstance(item, Mapping)] if isinstance(parsed, list) else []


def event_names(raw_events: str | None) -> set[str]:
    return {str(e["id"]) for e in _entities(raw_events) if e.get("id") is not None}


def action_ids(raw_actions: str | None) -> list[int]:
    ids = []
    for entity in _entities(raw_actions):
        try:
            ids.append(int(entity.get("id")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
    return ids


def sample_size(raw_limit: str | None) -> int:
    try:
        return max(int(raw_limit), 1) if raw_limit else DEFAULT_SAMPLE
    except ValueError:
        return DEFAULT_SAMPLE


def requires_flag_warning(property_sets: Iterable[Mapping[str, Any]]) -> bool:
    """True unless some sampled event already has a `$feature/<key>` property (no events: True)."""
    return not any(
        isinstance(key, str) and key.startswith(FLAG_PROPERTY_PREFIX)
        for properties in property_sets
        for key in properties
    )
