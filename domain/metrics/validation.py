"""Metric payload validation and the entity references metrics make (reference §4.3 steps 3 and 7).

Messages are PostHog's, byte for byte. Pydantic errors are rendered as upstream does: the `repr` of a
list of `{'loc', 'type', 'msg'}` dicts (never `input`/`ctx`/`url`, which would echo user data back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pydantic

from domain.errors import ValidationFailed
from domain.linear_regex import check_filter_regexes
from domain.metrics.schema import ExperimentFunnelMetric, ExperimentMetric

LEGACY_METRIC_KINDS: frozenset[str] = frozenset({"ExperimentTrendsQuery", "ExperimentFunnelsQuery"})

# Union members pydantic reports in `loc[0]`; used to narrow errors to the variant the caller chose.
METRIC_TYPE_TO_CLASS: dict[str, str] = {
    "mean": "ExperimentMeanMetric",
    "funnel": "ExperimentFunnelMetric",
    "ratio": "ExperimentRatioMetric",
    "retention": "ExperimentRetentionMetric",
}

# A funnel with many steps yields many union errors; the first ones are the actionable ones.
MAX_REPORTED_METRIC_ERRORS = 15

EVENTS_NODE_ID_HINT = (
    "EventsNode does not accept an 'id' field. "
    "To reference an event, use {'kind': 'EventsNode', 'event': '<event_name>'} (omit 'id'). "
    "To reference an action, switch to {'kind': 'ActionsNode', 'id': <integer_action_id>} (omit 'event')."
)

# Which keys of each metric type hold event/action nodes, in upstream's extraction order.
_NODE_KEYS: dict[str, tuple[str, ...]] = {
    "mean": ("source",),
    "ratio": ("numerator", "denominator"),
    "retention": ("start_event", "completion_event"),
}


def is_legacy_metric(metric: object) -> bool:
    """True for the pre-ExperimentMetric kinds that new writes refuse."""
    if not isinstance(metric, Mapping):
        return False
    kind = metric.get("kind")
    return isinstance(kind, str) and kind in LEGACY_METRIC_KINDS


def has_legacy_metrics(*metric_lists: Iterable[Any] | None) -> bool:
    """`experiment_has_legacy_metrics`: any inline or saved-metric query of a legacy kind."""
    return any(is_legacy_metric(metric) for metrics in metric_lists for metric in (metrics or []))


def safe_pydantic_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    """Only location, type and message: upstream strips echoed input to keep responses bounded."""
    return [{"loc": err.get("loc"), "type": err.get("type"), "msg": err.get("msg")} for err in exc.errors()]


def _is_events_node_id_confusion(err: Mapping[str, Any]) -> bool:
    loc = tuple(err.get("loc") or ())
    if len(loc) < 2 or err.get("type") != "extra_forbidden":
        return False
    return loc[-1] == "id" and "EventsNode" in loc


def _narrow_and_truncate(
    errors: list[dict[str, Any]], metric_type: object
) -> tuple[list[dict[str, Any]], str]:
    variant_class = METRIC_TYPE_TO_CLASS.get(metric_type) if isinstance(metric_type, str) else None
    if variant_class is not None:
        filtered = [err for err in errors if err["loc"] and err["loc"][0] == variant_class]
        if filtered:
            errors = filtered
    hint = EVENTS_NODE_ID_HINT if any(_is_events_node_id_confusion(err) for err in errors) else ""
    if len(errors) > MAX_REPORTED_METRIC_ERRORS:
        extra = len(errors) - MAX_REPORTED_METRIC_ERRORS
        errors = [*errors[:MAX_REPORTED_METRIC_ERRORS], {"truncated": f"...{extra} more"}]
    return errors, hint


def _validate_one(index: int, metric: object, attr: str | None) -> None:
    def fail(detail: str) -> ValidationFailed:
        return ValidationFailed(f"Invalid metric at index {index}: {detail}", attr=attr)

    if not isinstance(metric, Mapping):
        raise fail("must be a dict")
    kind = metric.get("kind")
    if is_legacy_metric(metric):
        raise fail(
            f"legacy metric kind '{kind}' is no longer supported for new experiments. "
            "Use 'ExperimentMetric' instead."
        )
    if kind != "ExperimentMetric":
        raise fail("metric kind must be 'ExperimentMetric'")
    try:
        validated = ExperimentMetric.model_validate(dict(metric)).root
    except pydantic.ValidationError as exc:
        errors, hint = _narrow_and_truncate(safe_pydantic_errors(exc), metric.get("metric_type"))
        suffix = f" {hint}" if hint else ""
        raise fail(f"{errors}.{suffix}") from None
    check_filter_regexes(metric, attr)
    if isinstance(validated, ExperimentFunnelMetric) and not validated.series:
        # The exposure event is prepended as step 0 at query time, so a user step is still needed.
        raise fail(
            "funnel metrics require at least one step. "
            "The experiment exposure event is added as the initial step automatically."
        )


def validate_metrics(metrics: object, attr: str | None = "metrics") -> None:
    """`validate_experiment_metrics`; `attr` is the serializer field (`metrics` / `metrics_secondary`)."""
    if metrics is None:
        return
    if not isinstance(metrics, list):
        raise ValidationFailed("Metrics must be a list", attr=attr)
    for index, metric in enumerate(metrics):
        _validate_one(index, metric, attr)


def _metric_nodes(metric: Mapping[str, Any]) -> list[Any]:
    metric_type = metric.get("metric_type")
    if metric_type == "funnel":
        series = metric.get("series")
        return list(series) if isinstance(series, list) else []
    return [metric[key] for key in _NODE_KEYS.get(str(metric_type), ()) if metric.get(key)]


def _nodes(metrics: Iterable[Any] | None) -> list[Mapping[str, Any]]:
    nodes: list[Mapping[str, Any]] = []
    for metric in metrics or []:
        if isinstance(metric, Mapping):
            nodes.extend(node for node in _metric_nodes(metric) if isinstance(node, Mapping))
    return nodes


def collect_event_names(metrics: Iterable[Any] | None) -> set[str]:
    """Event names referenced by EventsNodes; blank names mean "all events" and are skipped."""
    names: set[str] = set()
    for node in _nodes(metrics):
        event = node.get("event")
        if node.get("kind") == "EventsNode" and isinstance(event, str) and event.strip():
            names.add(event)
    return names


def collect_action_ids(metrics: Iterable[Any] | None) -> set[int]:
    """Action ids referenced by ActionsNodes (the schema already coerced them to integers)."""
    ids: set[int] = set()
    for node in _nodes(metrics):
        action_id = node.get("id")
        if node.get("kind") != "ActionsNode" or action_id is None or isinstance(action_id, bool):
            continue
        try:
            ids.add(int(action_id))
        except (TypeError, ValueError):
            continue  # schema validation reports a non-integer id
    return ids


def missing_actions_message(ids: Iterable[int]) -> str:
    """Text for ActionsNode ids that are unknown or deleted in the project (attr null)."""
    missing = ", ".join(str(action_id) for action_id in sorted(ids))
    return (
        f"Action(s) with ID {missing} not found or deleted. "
        "Each ActionsNode must reference an existing action belonging to this project."
    )


def unknown_events_message(names: Iterable[str]) -> str:
    """Text for event names never ingested by the project (attr null)."""
    quoted = ", ".join(f"'{name}'" for name in sorted(names))
    return (
        f"Event(s) {quoted} not found. "
        "No events with these names have been ingested by this project. "
        "If you meant a different event, please correct it. "
        "Only if the user has explicitly confirmed they want to proceed with "
        "the unknown event (e.g. they will instrument it shortly), "
        "call again with allow_unknown_events=True. "
        "Do not flip the flag silently to bypass this check."
    )


def check_action_ids(metrics: Iterable[Any] | None, existing_ids: Iterable[int]) -> None:
    """Raise when a referenced action is not among `existing_ids` (the caller's lookup result)."""
    missing = collect_action_ids(metrics) - set(existing_ids)
    if missing:
        raise ValidationFailed(missing_actions_message(missing))


def check_event_names(metrics: Iterable[Any] | None, known_names: Iterable[str]) -> None:
    """Raise when a referenced event was never ingested (skip when `allow_unknown_events`)."""
    unknown = collect_event_names(metrics) - set(known_names)
    if unknown:
        raise ValidationFailed(unknown_events_message(unknown))


def metric_uuids(metrics: Sequence[Any] | None) -> list[str]:
    """Truthy uuids in metric order."""
    return [m["uuid"] for m in metrics or [] if isinstance(m, Mapping) and m.get("uuid")]
