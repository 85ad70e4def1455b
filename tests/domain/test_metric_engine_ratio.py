"""Ratio and retention metrics from events, against hand-computed per-entity values."""

from __future__ import annotations

from typing import Any

from tests.support.metric_events import by_key, event, exposure, result, source, spec

RATIO_ROWS = [
    exposure("alice", "control", 1),
    exposure("bob", "control", 1),
    exposure("carol", "test", 1),
    event("purchase", "alice", 2, revenue=30),
    event("purchase", "alice", 3, revenue=10),
    event("session", "alice", 2),
    event("session", "alice", 3),
    event("session", "alice", 4),
    event("session", "bob", 2),
    event("purchase", "carol", 2, revenue=5),
    event("session", "carol", 2),
]


def ratio(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "numerator": source("purchase", math="sum", math_property="revenue"),
        "denominator": source("session"),
        **extra,
    }


def ratio_fields(res: dict[str, Any], key: str) -> tuple[Any, ...]:
    row = by_key(res)[key]
    names = ("number_of_samples", "sum", "sum_squares", "denominator_sum", "denominator_sum_squares")
    return (*(row[n] for n in names), row["numerator_denominator_sum_product"])


def test_ratio_aggregates_each_side_per_entity_then_pairs_them() -> None:
    res = result(spec(), ratio(), RATIO_ROWS)
    # alice m=40 d=3, bob m=0 d=1 -> Σm 40, Σm² 1600, Σd 4, Σd² 10, Σmd 120.
    assert ratio_fields(res, "control") == (2, 40.0, 1600.0, 4.0, 10.0, 120.0)
    assert ratio_fields(res, "test") == (1, 5.0, 25.0, 1.0, 1.0, 5.0)


def test_ratio_outlier_handling_per_side() -> None:
    metric = ratio(numerator_outlier_handling={"upper_bound_percentile": 0.5})
    res = result(spec(), metric, RATIO_ROWS)
    # numerators pooled (40, 0, 5): median 5 caps alice at 5; denominators untouched.
    assert ratio_fields(res, "control") == (2, 5.0, 25.0, 4.0, 10.0, 15.0)


def retention(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "retention",
        "start_event": source("signup"),
        "completion_event": source("login"),
        "retention_window_start": 1,
        "retention_window_end": 2,
        "retention_window_unit": "day",
        "start_handling": "first_seen",
        **extra,
    }


RETENTION_ROWS = [
    exposure("alice", "control", 1),
    event("signup", "alice", 2),  # day 0 (Mar 1)
    event("login", "alice", 20),  # same day: too early for [1, 2] days
    event("login", "alice", 47),  # Mar 2 23:00: day 1 -> retained
    exposure("bob", "control", 1),
    event("signup", "bob", 23),  # Mar 1 23:00
    event("login", "bob", 24 * 3 + 1),  # Mar 4: day 3 -> too late
    exposure("carol", "control", 1),  # never signs up: not in the sample
    exposure("dave", "test", 1),
    event("signup", "dave", 0.5),  # before exposure: does not start
    event("signup", "dave", 30),  # Mar 2
    event("login", "dave", 24 * 3 + 23),  # Mar 4 23:00: day 2 -> retained (end inclusive)
]


def test_retention_counts_starters_and_truncates_to_days() -> None:
    res = result(spec(), retention(), RETENTION_ROWS)
    # control: alice retained, bob not; carol has no start. Ratio with denominator 1 each.
    assert ratio_fields(res, "control") == (2, 1.0, 1.0, 2.0, 2.0, 1.0)
    assert ratio_fields(res, "test") == (1, 1.0, 1.0, 1.0, 1.0, 1.0)


def test_retention_last_seen_moves_the_start() -> None:
    rows = [*RETENTION_ROWS, event("signup", "alice", 24 * 5)]  # a later start: Mar 6, no login after
    res = result(spec(), retention(start_handling="last_seen"), rows)
    assert by_key(res)["control"]["sum"] == 0.0
    first = result(spec(), retention(), rows)
    assert by_key(first)["control"]["sum"] == 1.0


def test_retention_maturity_needs_the_window_closed() -> None:
    # As of Mar 3 12:00, alice's window (Mar 2..Mar 3 inclusive) is still open: not counted yet.
    res = result(spec(only_count_matured_users=True), retention(), RETENTION_ROWS, hours=24 * 2 + 12)
    assert by_key(res)["control"]["number_of_samples"] == 0
    later = result(spec(only_count_matured_users=True), retention(), RETENTION_ROWS, hours=24 * 4)
    assert by_key(later)["control"]["number_of_samples"] == 2


def test_retention_in_hours_compares_truncated_hours() -> None:
    rows = [exposure("a", "control", 0), event("signup", "a", 1.9), event("login", "a", 3.1)]
    metric = retention(retention_window_start=1, retention_window_end=1, retention_window_unit="hour")
    # signup in hour 1, login in hour 3: two hours later by the clock of truncated hours -> not retained.
    assert by_key(result(spec(variant_keys=("control",)), metric, rows))["control"]["sum"] == 0.0
    rows[-1] = event("login", "a", 2.2)
    assert by_key(result(spec(variant_keys=("control",)), metric, rows))["control"]["sum"] == 1.0
