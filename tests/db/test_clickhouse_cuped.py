"""CUPED on ClickHouse: the pre-exposure covariate computed in SQL equals the embedded engine's, for
every day of a series (counts exactly, sums to a relative 1e-9), with the sample-ratio check too.

The hand-written covariate tests of the embedded engine run through both engines in
tests/db/test_clickhouse_parity.py; here, randomized series with events before the experiment start
and around each entity's lookback window, and the window's edges to the microsecond."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from db.clickhouse.client import ClickHouse
from domain.metric_engine import analysis_days, to_micros
from tests.domain.test_metric_engine_series import CUPED_METRICS, DAYS, METRICS, STATS_OPTIONS
from tests.support.clickhouse import Parity
from tests.support.metric_events import START, Row, at, by_key, event, exposure, funnel, mean, source, spec

ACTIONS = {9: ({"event": "pay", "properties": [{"key": "amount", "operator": "gt", "value": 1}]},)}
SUPPORTED: dict[str, dict[str, Any]] = {
    **CUPED_METRICS,
    "mean_avg": mean("pay", math="avg", math_property="amount"),
    "mean_min": mean("pay", math="min", math_property="amount"),
    "mean_max_winsorized": mean(
        "pay", math="max", math_property="amount", upper_bound_percentile=0.8, ignore_zeros=True
    ),
    "mean_dau_winsorized": mean("view", math="dau", lower_bound_percentile=0.1, upper_bound_percentile=0.9),
    "mean_count_window": mean("view", conversion_window=30, conversion_window_unit="hour"),
    "funnel_ordered_window": funnel("view", "pay", conversion_window=2, conversion_window_unit="day"),
    "funnel_action_last_step": {
        "kind": "ExperimentMetric",
        "metric_type": "funnel",
        "series": [source("view"), {"kind": "ActionsNode", "id": 9}],
    },
}
UNSUPPORTED: dict[str, dict[str, Any]] = {
    "funnel_unordered": funnel("view", "pay", funnel_order_type="unordered"),
    "ratio": METRICS["ratio"],
}


@pytest.fixture
def parity(clickhouse: ClickHouse) -> Parity:
    return Parity(clickhouse)


def _props(rng: random.Random) -> dict[str, Any]:
    return {"amount": rng.choice([1, 2.5, 10, "7", None, 0, -3]), "$session_id": rng.choice(["a", "b", None])}


def cuped_rows(seed: int, users: int = 360, lookback_hours: float = 24) -> list[Row]:
    """Exposures on quarter hours (exact in µs) over the experiment's days; per user, events before
    the experiment start, before, at and after the edges of its lookback window, and after exposure."""
    rng = random.Random(seed)
    rows: list[Row] = []
    names = ["view", "cart", "pay"]
    for i in range(users):
        user = f"u{i}"
        first = rng.randrange(0, 24 * DAYS * 4) / 4
        if rng.random() < 0.1:  # exposed before the start: not an exposure of this experiment
            rows.append(exposure(user, "test", -rng.uniform(1, 30)))
        rows.append(exposure(user, rng.choice(["control", "test", "holdout-1"]), first))
        if rng.random() < 0.1:
            rows.append(exposure(user, rng.choice(["control", "test"]), first + rng.uniform(0, 48)))
        edges = [first - lookback_hours, first - lookback_hours - 0.25, first]
        for _ in range(rng.randint(0, 6)):
            when = rng.choice([*edges, first - rng.uniform(0, lookback_hours + 24)])
            rows.append(event(rng.choice(names), user, when, **_props(rng)))
        for _ in range(rng.randint(0, 5)):
            rows.append(event(rng.choice(names), user, rng.uniform(first, 24 * (DAYS + 1)), **_props(rng)))
    return rows


def _series(parity: Parity, metric: dict[str, Any], stats_config: dict[str, Any], **more: Any) -> list[Any]:
    experiment = spec(
        holdout_id=1, stats_config=stats_config, actions=ACTIONS, timezone="Europe/Paris", **more
    )
    days = analysis_days(START, at(24 * DAYS), at(24 * DAYS), "Europe/Paris")
    lookback = stats_config["cuped"]["lookback_days"]
    rows = cuped_rows(seed=len(str(metric)) + lookback, lookback_hours=24 * lookback)
    return parity.series(experiment, metric, rows, [d.as_of for d in days])


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_cuped_frequentist_series_is_the_same_on_clickhouse(parity: Parity, name: str) -> None:
    """Sequential, Holm-corrected, lookback 1 day: every day's covariate sums and adjusted numbers."""
    series = _series(parity, SUPPORTED[name], STATS_OPTIONS)
    last = series[-1]["variant_results"]
    assert all(v["covariate_sum"] is not None for v in last)
    assert all(v["variance_reduction"] is not None for v in last)
    assert series[-1]["srm"]["observed"]["control"] > 50


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_cuped_bayesian_matured_series_is_the_same_on_clickhouse(parity: Parity, name: str) -> None:
    """Bayesian, a 3-day lookback reaching further before the start, matured users, an end date."""
    config = {"method": "bayesian", "cuped": {"enabled": True, "lookback_days": 3}}
    end = to_micros(at(24 * (DAYS - 1) + 7))
    series = _series(parity, SUPPORTED[name], config, only_count_matured_users=True, end=end)
    assert any(v["covariate_sum"] for day in series for v in day["variant_results"])


@pytest.mark.parametrize("name", sorted(UNSUPPORTED))
def test_metrics_without_a_covariate_stay_unadjusted_on_clickhouse(parity: Parity, name: str) -> None:
    series = _series(parity, UNSUPPORTED[name], STATS_OPTIONS)
    assert {v["covariate_sum"] for day in series for v in day["variant_results"]} == {None}


def test_the_lookback_window_edges_to_the_microsecond(parity: Parity) -> None:
    """`[first - lookback, first)`: its first microsecond counts, the one before and `first` do not."""
    day = timedelta(days=1)
    micro = timedelta(microseconds=1)
    first = at(30)
    rows: list[Row] = [exposure("a", "control", 30), exposure("b", "test", 30)]
    rows += [
        ("pay", "a", first - day, {"amount": 1}),  # the window's first instant: in
        ("pay", "a", first - micro, {"amount": 2}),  # its last instant: in
        ("pay", "a", first - day - micro, {"amount": 4}),  # just before it: out
        ("pay", "a", first, {"amount": 8}),  # the exposure's instant: the metric, not the covariate
        ("pay", "b", first - day - micro, {"amount": 16}),
        ("pay", "b", first - 2 * micro, {"amount": 32}),
    ]
    experiment = spec(stats_config={"cuped": {"enabled": True, "lookback_days": 1}})
    res = parity.series(
        experiment, mean("pay", math="sum", math_property="amount"), rows, [to_micros(at(48))]
    )
    rows_by_key = by_key(res[0])
    assert [rows_by_key[k]["covariate_sum"] for k in ("control", "test")] == [3.0, 32.0]
    assert [rows_by_key[k]["covariate_sum_product"] for k in ("control", "test")] == [24.0, 0.0]
    converted = parity.series(experiment, funnel("view", "pay"), rows, [to_micros(at(48))])
    assert [by_key(converted[0])[k]["covariate_sum"] for k in ("control", "test")] == [1.0, 1.0]


def test_events_before_the_start_count_only_in_the_covariate(parity: Parity) -> None:
    rows: list[Row] = [exposure("a", "control", 2), exposure("b", "test", 3)]
    rows += [
        event("pay", "a", -20, amount=5),
        event("pay", "b", -30, amount=7),
        event("pay", "b", 4, amount=1),
    ]
    metric = mean("pay", math="sum", math_property="amount")
    on = parity.series(spec(stats_config={"cuped": {"enabled": True}}), metric, rows, [to_micros(at(48))])
    assert {k: (v["sum"], v["covariate_sum"]) for k, v in by_key(on[0]).items()} == {
        "control": (0.0, 5.0),
        "test": (1.0, 7.0),
    }
    off = parity.series(replace(spec(), stats_config=None), metric, rows, [to_micros(at(48))])
    assert by_key(off[0])["test"]["covariate_sum"] is None
