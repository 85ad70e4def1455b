"""CUPED's covariate in the metric engine: hand-computed sums from hand-written events.

The covariate is the metric over `[first exposure - lookback, first exposure)`, events before the
experiment start included; the post-exposure value is unchanged by it.
"""

from __future__ import annotations

from typing import Any

import pytest

from domain.metric_engine import events_from_rows, events_start, metric_result, to_micros
from tests.support.metric_events import START, at, by_key, event, exposure, funnel, mean, result, source, spec

DAY = 86_400 * 1_000_000


def cuped(days: int = 2, **more: Any) -> dict[str, Any]:
    return {"cuped": {"enabled": True, "lookback_days": days}, **more}


def covariates(res: dict[str, Any]) -> dict[str, tuple[Any, Any, Any]]:
    return {
        key: (row["covariate_sum"], row["covariate_sum_squares"], row["covariate_sum_product"])
        for key, row in by_key(res).items()
    }


MEAN_ROWS = [
    exposure("a", "control", 10),
    event("purchase", "a", -40, amount=100),  # before a's window [-38, 10)
    event("purchase", "a", -30, amount=5),  # before the experiment, inside the window
    event("purchase", "a", 5, amount=7),  # after the start, before a's exposure
    event("purchase", "a", 12, amount=3),  # post-exposure: the metric, not the covariate
    exposure("b", "test", 50),
    event("purchase", "b", 2, amount=4),  # exactly at the window's (inclusive) start
    event("purchase", "b", 60, amount=10),
    exposure("c", "control", 20),
    event("purchase", "d", 0, amount=9),  # never exposed
]
SUM = mean("purchase", math="sum", math_property="amount")


def test_mean_covariate_sums_by_hand() -> None:
    res = result(spec(stats_config=cuped()), SUM, MEAN_ROWS, hours=72)
    # control: a (y 3, x 5 + 7 = 12) and c (0, 0); test: b (y 10, x 4)
    assert covariates(res) == {"control": (12.0, 144.0, 36.0), "test": (4.0, 16.0, 40.0)}
    assert by_key(res)["control"]["sum"] == 3.0 and by_key(res)["test"]["sum"] == 10.0


def test_the_covariate_uses_the_metrics_own_math() -> None:
    res = result(spec(stats_config=cuped()), mean("purchase"), MEAN_ROWS, hours=72)  # count of events
    assert covariates(res) == {"control": (2.0, 4.0, 2.0), "test": (1.0, 1.0, 1.0)}


def test_a_longer_lookback_reaches_further_back() -> None:
    res = result(spec(stats_config=cuped(days=3)), SUM, MEAN_ROWS, hours=72)
    assert covariates(res)["control"] == (112.0, 112.0**2, 3 * 112.0)


def test_cuped_off_collects_no_covariate() -> None:
    res = result(spec(), SUM, MEAN_ROWS, hours=72)
    assert set(covariates(res).values()) == {(None, None, None)}
    assert result(spec(), SUM, MEAN_ROWS, hours=72)["variant_results"][0]["variance_reduction"] is None


FUNNEL_ROWS = [
    exposure("a", "control", 30),
    event("pay", "a", 10),  # last step inside a's window [6, 30): covariate 1
    exposure("b", "test", 30),
    event("view", "b", 20),  # only the first step before exposure: 0
    exposure("c", "control", 40),
    event("pay", "c", 10),  # outside c's window [16, 40): 0
    event("view", "c", 40.5),
    event("pay", "c", 41),  # c converts after exposure
]


@pytest.mark.parametrize("order", [None, "ordered", "strict"])
def test_funnel_covariate_is_the_last_step_in_the_window(order: str | None) -> None:
    metric = funnel("view", "pay", **({"funnel_order_type": order} if order else {}))
    res = result(spec(stats_config=cuped(days=1)), metric, FUNNEL_ROWS, hours=72)
    assert covariates(res) == {"control": (1.0, 1.0, 0.0), "test": (0.0, 0.0, 0.0)}
    assert by_key(res)["control"]["sum"] == 1.0  # c converted; a did not after its exposure


def test_unordered_funnels_and_ratios_get_no_covariate() -> None:
    unordered = funnel("view", "pay", funnel_order_type="unordered")
    ratio = {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "numerator": source("pay"),
        "denominator": source("view"),
    }
    for metric in (unordered, ratio):
        res = result(spec(stats_config=cuped(days=1)), metric, FUNNEL_ROWS, hours=72)
        assert set(covariates(res).values()) == {(None, None, None)}


def test_the_event_load_starts_one_lookback_before_the_experiment() -> None:
    start = to_micros(START)
    assert events_start(spec(stats_config=cuped(days=3)), SUM) == start - 3 * DAY
    assert (
        events_start(spec(stats_config=cuped(days=3)), funnel("view", "pay", funnel_order_type="unordered"))
        == start
    )
    assert events_start(spec(), SUM) == start


def test_adjusted_result_matches_the_stats_engine_on_the_same_sums() -> None:
    rows = [exposure(f"u{i}", "control" if i % 2 else "test", i % 48) for i in range(240)]
    rows += [event("purchase", f"u{i}", (i % 48) - 20, amount=i % 7) for i in range(240)]
    rows += [event("purchase", f"u{i}", (i % 48) + 5, amount=(i % 7) * 2 + i % 3) for i in range(240)]
    config = cuped(days=1, method="frequentist")
    res = metric_result(spec(stats_config=config), SUM, events_from_rows(rows), to_micros(at(100)))
    [row] = res["variant_results"]
    assert row["variance_reduction"] is not None and row["variance_reduction"] > 0.5
    plain = metric_result(
        spec(stats_config={"method": "frequentist"}), SUM, events_from_rows(rows), to_micros(at(100))
    )
    low, high = row["confidence_interval"]
    plain_low, plain_high = plain["variant_results"][0]["confidence_interval"]
    assert high - low < plain_high - plain_low
