"""Hand-written event fixtures for the metric engine: readable rows, hours since a fixed start."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.metric_engine import EventColumns, ExperimentSpec, events_from_rows, metric_result, to_micros

START = datetime(2024, 3, 1, tzinfo=UTC)
FLAG = "checkout"
Row = tuple[str, str, datetime, dict[str, Any]]


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


def exposure(user: str, variant: str, hours: float, **props: Any) -> Row:
    return (
        "$feature_flag_called",
        user,
        at(hours),
        {"$feature_flag": FLAG, "$feature_flag_response": variant, **props},
    )


def event(name: str, user: str, hours: float, **props: Any) -> Row:
    return (name, user, at(hours), dict(props))


def spec(**changes: Any) -> ExperimentSpec:
    base = ExperimentSpec(flag_key=FLAG, variant_keys=("control", "test"), start=to_micros(START))
    return replace(base, **changes)


def source(event_name: str = "purchase", **extra: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event_name, **extra}


def mean(event_name: str = "purchase", **extra: Any) -> dict[str, Any]:
    source_extra = {k: extra.pop(k) for k in ("math", "math_property", "properties") if k in extra}
    return {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "source": source(event_name, **source_extra),
        **extra,
    }


def funnel(*steps: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "funnel",
        "series": [source(s) for s in steps],
        **extra,
    }


def events(*rows: Row) -> EventColumns:
    return events_from_rows(rows)


def result(
    spec_: ExperimentSpec, metric: dict[str, Any], rows: list[Row], hours: float = 24 * 30
) -> dict[str, Any]:
    return metric_result(spec_, metric, events_from_rows(rows), to_micros(at(hours)))


def by_key(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every variant's row (baseline included) by key."""
    return {res["baseline"]["key"]: res["baseline"], **{v["key"]: v for v in res["variant_results"]}}


def sums(res: dict[str, Any]) -> dict[str, tuple[int, float, float]]:
    """(number_of_samples, sum, sum_squares) per variant."""
    return {k: (v["number_of_samples"], v["sum"], v["sum_squares"]) for k, v in by_key(res).items()}
