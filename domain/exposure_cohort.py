"""The exposure cohort of an experiment (reference §4.9): who performed the exposure event since the
start. Builds PostHog's behavioral cohort filter and reads it back to list the members."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.errors import ValidationFailed
from domain.flag_properties import compile_properties

EXPOSURE_EVENT = "$feature_flag_called"
KEPT_PROPERTY_TYPES = ("event", "feature", "element", "hogql")


@dataclass(frozen=True)
class ExposureCriterion:
    """A `performed_event` criterion: the event name (or action id), its property filters, since when."""

    key: str | int
    event_type: str  # "events" | "actions"
    event_filters: list[dict[str, Any]]
    since: datetime | None


def check_can_create(has_flag: bool, start_date: datetime | None, exposure_cohort_id: int | None) -> None:
    if not has_flag:
        raise ValidationFailed("Experiment does not have a feature flag")
    if start_date is None:
        raise ValidationFailed("Experiment does not have a start date")
    if exposure_cohort_id is not None:
        raise ValidationFailed("Experiment already has an exposure cohort")


def cohort_name(experiment_name: str) -> str:
    return f'Users exposed to experiment "{experiment_name}"'


def _entities(custom_filter: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Legacy filter entities as PostHog's Filter orders them: actions, then events, by `order`."""
    found: list[dict[str, Any]] = []
    for key, kind in (("actions", "actions"), ("events", "events")):
        raw = custom_filter.get(key) or []
        items = json.loads(raw) if isinstance(raw, str) else raw
        found.extend({**item, "type": kind} for item in items if isinstance(item, Mapping))
    return sorted(found, key=lambda entity: entity.get("order") or -1)


def _flat_properties(properties: Any) -> list[dict[str, Any]]:
    """Leaf property filters of a list or a nested `{type, values}` group."""
    if isinstance(properties, Mapping):
        if "values" in properties:
            return _flat_properties(properties["values"])
        return [{**properties, "type": properties.get("type", "event")}]
    if isinstance(properties, list):
        return [leaf for item in properties for leaf in _flat_properties(item)]
    return []


def exposure_target(
    flag_key: str, custom_filter: Mapping[str, Any] | None
) -> tuple[str | int, str, list[dict[str, Any]]]:
    """(event or action id, `events`|`actions`, event filters): the flag-called event by default."""
    default_filters = [{"key": "$feature_flag", "value": [flag_key], "operator": "exact", "type": "event"}]
    entities = _entities(custom_filter) if custom_filter else []
    entity = entities[0] if entities else None
    if entity is None or not entity.get("id"):
        return EXPOSURE_EVENT, "events", default_filters
    target: str | int = entity["id"]
    if entity["type"] == "actions":
        try:
            target = int(target)
        except (TypeError, ValueError):
            raise ValidationFailed("Invalid action ID") from None
    kept = [p for p in _flat_properties(entity.get("properties")) if p.get("type") in KEPT_PROPERTY_TYPES]
    return target, entity["type"], kept


def cohort_filters(
    target: str | int, event_type: str, event_filters: list[dict[str, Any]], start_date: datetime
) -> dict[str, Any]:
    criterion = {
        "type": "behavioral",
        "value": "performed_event",
        "key": target,
        "negation": False,
        "event_type": event_type,
        "event_filters": event_filters,
        "explicit_datetime": start_date.isoformat(),
    }
    return {"properties": {"type": "OR", "values": [{"type": "OR", "values": [criterion]}]}}


def _parse_since(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def exposure_criterion(filters: Mapping[str, Any] | None) -> ExposureCriterion | None:
    """The single `performed_event` criterion of an exposure cohort, or None for other cohorts."""
    try:
        criterion = filters["properties"]["values"][0]["values"][0]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return None
    if not isinstance(criterion, Mapping) or criterion.get("value") != "performed_event":
        return None
    return ExposureCriterion(
        key=criterion.get("key") or EXPOSURE_EVENT,
        event_type=criterion.get("event_type") or "events",
        event_filters=[dict(f) for f in criterion.get("event_filters") or [] if isinstance(f, Mapping)],
        since=_parse_since(criterion.get("explicit_datetime")),
    )


def event_matcher(criterion: ExposureCriterion) -> Callable[[Mapping[str, Any]], bool]:
    """Matches an event's properties against the criterion's `event` filters.

    Element, feature and HogQL filters need data the event store does not keep; they are not applied.
    """
    match = compile_properties([f for f in criterion.event_filters if f.get("type", "event") == "event"])
    return lambda properties: match(properties) is True
