"""The one-pass daily series equals a fresh analysis of the data as it stood at each day's end.

The reference recomputes each day from the events *truncated* at that day's boundary (what a results
query run at that moment would have seen), independently of the sweep's per-entity state.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from domain.metric_engine import (
    analysis_days,
    column_from_json,
    events_from_rows,
    exposure_counts,
    metric_result,
    metric_series,
    result_day,
    to_micros,
    zone,
)
from domain.metric_engine.columns import ColumnsBuilder
from tests.support.metric_events import START, Row, at, event, exposure, funnel, mean, source, spec

DAYS = 6


def random_rows(seed: int, users: int = 60) -> list[Row]:
    rng = random.Random(seed)
    rows: list[Row] = []
    for i in range(users):
        user = f"u{i}"
        first = rng.uniform(0, 24 * DAYS)
        rows.append(exposure(user, rng.choice(["control", "test", "holdout-1"]), first))
        if rng.random() < 0.15:  # some switch variant later, some come back to the same one
            rows.append(exposure(user, rng.choice(["control", "test"]), first + rng.uniform(0, 48)))
        for _ in range(rng.randint(0, 6)):
            name = rng.choice(["view", "cart", "pay", "signup", "login"])
            when = rng.uniform(first - 12, 24 * (DAYS + 1))
            rows.append(
                event(
                    name,
                    user,
                    when,
                    amount=rng.choice([1, 2.5, 10, "7", None]),
                    **{"$session_id": rng.choice("abc")},
                )
            )
    return rows


METRICS: dict[str, dict[str, Any]] = {
    "mean_sum": mean("pay", math="sum", math_property="amount"),
    "mean_winsorized": mean("view", lower_bound_percentile=0.2, upper_bound_percentile=0.8),
    "mean_window_sessions": mean(
        "view", math="unique_session", conversion_window=2, conversion_window_unit="day"
    ),
    "funnel_ordered": funnel("view", "cart", "pay"),
    "funnel_unordered_window": funnel(
        "view", "pay", funnel_order_type="unordered", conversion_window=36, conversion_window_unit="hour"
    ),
    "funnel_strict": funnel("view", "cart", funnel_order_type="strict"),
    "ratio": {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "numerator": source("pay", math="sum", math_property="amount"),
        "denominator": source("view"),
        "denominator_outlier_handling": {"upper_bound_percentile": 0.9},
    },
    "retention_last_seen": {
        "kind": "ExperimentMetric",
        "metric_type": "retention",
        "start_event": source("signup"),
        "completion_event": source("login"),
        "retention_window_start": 0,
        "retention_window_end": 1,
        "retention_window_unit": "day",
        "start_handling": "last_seen",
    },
}


@pytest.mark.parametrize("matured", [False, True])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_each_day_equals_a_fresh_analysis_of_the_truncated_data(name: str, matured: bool) -> None:
    rows = random_rows(seed=hash(name) % 1000)
    experiment = spec(holdout_id=1, only_count_matured_users=matured, end=to_micros(at(24 * (DAYS - 1) + 7)))
    days = analysis_days(START, at(24 * DAYS), at(24 * DAYS), "Europe/Paris")
    series = metric_series(experiment, METRICS[name], events_from_rows(rows), [d.as_of for d in days])
    for day, got in zip(days, series, strict=True):
        visible = [r for r in rows if to_micros(r[2]) < day.as_of]
        assert got == metric_result(experiment, METRICS[name], events_from_rows(visible), day.as_of), day.day


STATS_OPTIONS = {
    "method": "frequentist",
    "frequentist": {"sequential_testing_enabled": True, "sequential_tuning_parameter": 200},
    "multiple_comparison_correction": "holm",
    "cuped": {"enabled": True, "lookback_days": 1},
}


CUPED_METRICS = {
    "mean_sum": METRICS["mean_sum"],
    "mean_window_sessions": METRICS["mean_window_sessions"],
    "funnel_two_steps": funnel("view", "cart"),
    "funnel_strict": METRICS["funnel_strict"],
}


@pytest.mark.parametrize("name", sorted(CUPED_METRICS))
def test_cuped_sequential_and_corrected_days_equal_fresh_analyses(name: str) -> None:
    """The covariate comes from the same sweep: events before the start and before each exposure."""
    rows = random_rows(seed=7 + len(name), users=400)  # >= 50 per variant: past the gates
    experiment = spec(holdout_id=1, stats_config=STATS_OPTIONS)
    days = analysis_days(START, at(24 * DAYS), at(24 * DAYS), "Europe/Paris")
    metric = CUPED_METRICS[name]
    series = metric_series(experiment, metric, events_from_rows(rows), [d.as_of for d in days])
    for day, got in zip(days, series, strict=True):
        visible = [r for r in rows if to_micros(r[2]) < day.as_of]
        assert got == metric_result(experiment, metric, events_from_rows(visible), day.as_of), day.day
    last = series[-1]["variant_results"]
    assert all(v["covariate_sum"] is not None for v in last)
    assert all(v["adjusted_p_value"] is not None and v["variance_reduction"] is not None for v in last)


def test_days_follow_the_project_time_zone() -> None:
    tz = "America/Los_Angeles"
    start = START.replace(hour=3)  # Feb 29, 19:00 in Los Angeles
    days = analysis_days(start, None, start + timedelta(days=2), tz)
    assert [d.day.isoformat() for d in days] == ["2024-02-29", "2024-03-01", "2024-03-02"]
    assert days[0].query_to.isoformat() == "2024-03-01T08:00:00+00:00"  # local midnight, PST
    assert result_day(days[0].query_to, zone(tz)).isoformat() == "2024-02-29"
    spring = analysis_days(START.replace(day=10, hour=12), None, START.replace(day=11, hour=12), tz)
    assert spring[0].day.isoformat() == "2024-03-10"
    assert spring[0].query_to.isoformat() == "2024-03-11T07:00:00+00:00"  # DST began on Mar 10


def test_exposure_counts_are_cumulative_per_variant_with_multiple_last() -> None:
    rows = [
        exposure("a", "control", 1),
        exposure("b", "test", 2),
        exposure("b", "test", 30),
        exposure("c", "control", 26),
        exposure("d", "test", 27),
        exposure("d", "control", 50),
    ]
    out = exposure_counts(events_from_rows(rows), spec(), to_micros(at(60)))
    assert out["timeseries"] == [
        {
            "variant": "control",
            "days": ["2024-03-01", "2024-03-02", "2024-03-03"],
            "exposure_counts": [1, 2, 2],
        },
        {"variant": "test", "days": ["2024-03-01", "2024-03-02", "2024-03-03"], "exposure_counts": [1, 1, 1]},
        {
            "variant": "$multiple",
            "days": ["2024-03-01", "2024-03-02", "2024-03-03"],
            "exposure_counts": [0, 1, 1],
        },
    ]
    assert out["total_exposures"] == {"control": 2, "test": 1, "$multiple": 1}
    assert out["kind"] == "ExperimentExposureQuery"
    assert (
        out["date_range"]["date_from"] == "2024-03-01T00:00:00+00:00" and out["date_range"]["date_to"] is None
    )


def test_streamed_columns_match_row_built_columns() -> None:
    builder = ColumnsBuilder(["amount", "plan"])
    builder.add([("pay", "u1", 5, "10", None), ("pay", "u2", 6, '"7"', '"pro"')])
    builder.add([("view", "u1", 7, None, "null"), ("pay", "u2", 8, "10", '"pro"')])
    built = builder.build()
    assert built.names == ("pay", "view") and built.entities == ("u1", "u2")
    assert built.timestamp.tolist() == [5, 6, 7, 8]
    amount = built.properties["amount"]
    assert [amount.values[c] if c >= 0 else "absent" for c in amount.codes] == [10, "7", "absent", 10]
    plan = built.properties["plan"]
    assert [plan.values[c] if c >= 0 else "absent" for c in plan.codes] == ["absent", "pro", None, "pro"]
    assert np.array_equal(column_from_json(["1", None, "1"]).codes, [0, -1, 0])


def test_unsorted_boundaries_are_refused() -> None:
    with pytest.raises(ValueError, match="ascending"):
        metric_series(spec(), mean(), events_from_rows([]), [2, 1])


def test_no_exposures_gives_zero_rows_per_variant() -> None:
    res = metric_result(replace(spec(), variant_keys=("control", "test")), mean(), events_from_rows([]), 10)
    assert res["baseline"]["number_of_samples"] == 0
    assert res["baseline"]["validation_failures"] == ["not-enough-exposures", "baseline-mean-is-zero"]
