"""One answer, two engines: every result test of the embedded engine, and randomized daily series of
every metric kind, run again through the ClickHouse backend's SQL (chdb in process), which must agree
with the embedded engine: counts exactly, sums (and every other number) to a relative 1e-9."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest

import tests.domain.test_metric_engine_cuped as cuped_tests
import tests.domain.test_metric_engine_funnel as funnel_tests
import tests.domain.test_metric_engine_mean as mean_tests
import tests.domain.test_metric_engine_ratio as ratio_tests
from db.clickhouse.client import ClickHouse
from domain.metric_engine import analysis_days, to_micros
from tests.domain.test_metric_engine_series import DAYS, METRICS, random_rows
from tests.support.clickhouse import Parity
from tests.support.metric_events import START, Row, at, event, exposure, funnel, mean, source, spec


@pytest.fixture
def parity(clickhouse: ClickHouse) -> Parity:
    return Parity(clickhouse)


def _parameters(function: Callable[..., Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Every combination of the test's `parametrize` marks, as keyword arguments and an id suffix."""
    axes = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        names = [
            n.strip() for n in (mark.args[0].split(",") if isinstance(mark.args[0], str) else mark.args[0])
        ]
        values = [v.values if hasattr(v, "values") else v for v in mark.args[1]]
        axes.append([dict(zip(names, v if len(names) > 1 else (v,), strict=True)) for v in values])
    for combination in itertools.product(*axes):
        kwargs = {k: v for part in combination for k, v in part.items()}
        yield kwargs, f"[{'-'.join(map(str, kwargs.values()))}]" if kwargs else ""


def _result_tests(*modules: ModuleType) -> list[Any]:
    """The tests that analyse through `tests.support.metric_events.result`."""
    cases = []
    for module in modules:
        for name, function in vars(module).items():
            if name.startswith("test_") and "result" in function.__code__.co_names:
                for kwargs, suffix in _parameters(function):
                    short = module.__name__.rsplit("_", 1)[-1]
                    cases.append(pytest.param(module, function, kwargs, id=f"{short}.{name}{suffix}"))
    return cases


@pytest.mark.parametrize(
    ("module", "test", "kwargs"), _result_tests(mean_tests, funnel_tests, ratio_tests, cuped_tests)
)
def test_every_result_test_gives_the_same_answer_on_clickhouse(
    parity: Parity,
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    test: Callable[..., None],
    kwargs: dict[str, Any],
) -> None:
    # The test's own assertions run on the embedded result; `Parity.result` asserts ClickHouse's equals it.
    monkeypatch.setattr(module, "result", parity.result)
    test(**kwargs)


EXTRA: dict[str, dict[str, Any]] = {
    "mean_avg_window": mean(
        "pay", math="avg", math_property="amount", conversion_window=30, conversion_window_unit="hour"
    ),
    "mean_min": mean("pay", math="min", math_property="amount"),
    "mean_max_ignore_zeros": mean(
        "view", math="max", math_property="amount", upper_bound_percentile=0.7, ignore_zeros=True
    ),
    "mean_dau": mean("view", math="dau", lower_bound_percentile=0.1),
    "mean_any_event_filtered": {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "source": {
            "kind": "EventsNode",
            "event": None,
            "properties": [{"key": "amount", "operator": "gte", "value": 2}],
        },
    },
    "funnel_ordered_window": funnel("view", "view", "pay", conversion_window=2, conversion_window_unit="day"),
    "funnel_strict_window": funnel(
        "view", "cart", "pay", funnel_order_type="strict", conversion_window=1, conversion_window_unit="week"
    ),
    "ratio_both_sides": {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "numerator": source("pay", math="max", math_property="amount"),
        "denominator": source("view", math="unique_session"),
        "numerator_outlier_handling": {"lower_bound_percentile": 0.05, "upper_bound_percentile": 0.95},
        "denominator_outlier_handling": {"upper_bound_percentile": 0.5, "ignore_zeros": True},
        "conversion_window": 3,
        "conversion_window_unit": "day",
    },
    **{
        f"retention_{unit}_{start}": {
            "kind": "ExperimentMetric",
            "metric_type": "retention",
            "start_event": source("signup"),
            "completion_event": source("login"),
            "retention_window_start": low,
            "retention_window_end": high,
            "retention_window_unit": unit,
            "start_handling": start,
        }
        for unit, low, high in (("day", 1, 2), ("hour", 0, 20), ("week", 0, 1), ("minute", 5, 600))
        for start in ("first_seen", "last_seen")
    },
}


def on_boundaries(first: datetime, second: datetime) -> list[Row]:
    """Exposures, switches and events exactly at day boundaries, where `<` and `<=` part ways."""
    hours = [(moment - START).total_seconds() / 3600 for moment in (first, second)]
    rows = [exposure("edge-a", "control", hours[0]), exposure("edge-a", "test", hours[1])]
    rows += [exposure("edge-b", "test", hours[0] - 24), exposure("edge-b", "control", hours[0])]
    for name in ("view", "cart", "pay", "signup", "login"):
        rows += [
            event(name, user, h, amount=3, **{"$session_id": "z"})
            for user in ("edge-a", "edge-b")
            for h in hours
        ]
    return rows


@pytest.mark.parametrize("matured", [False, True])
@pytest.mark.parametrize("name", sorted({**METRICS, **EXTRA}))
def test_every_day_of_a_series_is_the_same_on_clickhouse(parity: Parity, name: str, matured: bool) -> None:
    """The embedded engine's series test data (switchers, a holdout, an end, a zone with DST), every day."""
    days = analysis_days(START, at(24 * DAYS), at(24 * DAYS), "Europe/Paris")
    rows = random_rows(seed=sum(map(ord, name))) + on_boundaries(days[1].query_to, days[2].query_to)
    experiment = spec(holdout_id=1, only_count_matured_users=matured, end=to_micros(at(24 * (DAYS - 1) + 7)))
    parity.series(
        replace(experiment, timezone="Europe/Paris"),
        {**METRICS, **EXTRA}[name],
        rows,
        [d.as_of for d in days],
    )


@pytest.mark.parametrize("seed", range(4))
def test_exposure_rules_are_the_same_on_clickhouse(parity: Parity, seed: int) -> None:
    """Custom exposure events and actions, test accounts, first_seen, excluded variants, ties."""
    rng = random.Random(seed)
    rows = random_rows(seed)
    for i in range(40):
        props = {"$feature/checkout": rng.choice(["control", "test", "other", 3]), "page": rng.choice("ab")}
        props |= rng.choice(
            [{}, {"$host": "localhost:8000"}, {"email": f"u{i}@shop.test"}, {"email": f"u{i}@shop.io"}]
        )
        rows.append(event("viewed", f"v{i % 25}", rng.choice([1.0, 2.0, 30.5]), **props))
    rows += [exposure("tie", "control", 5), exposure("tie", "test", 5), event("pay", "tie", 6, amount=1)]
    configs: list[dict[str, Any]] = [
        {"filterTestAccounts": True},
        {"multiple_variant_handling": "first_seen"},
        {
            "exposure_config": {
                "kind": "ExperimentEventExposureConfig",
                "event": "viewed",
                "properties": [{"key": "page", "value": "a"}],
            }
        },
        {"exposure_config": {"kind": "ActionsNode", "id": 9}, "filterTestAccounts": True},
    ]
    actions = {
        9: (
            {"event": "viewed", "properties": [{"key": "page", "operator": "is_not", "value": "b"}]},
            {"event": "$feature_flag_called"},
        )
    }
    experiment = spec(
        variant_keys=("control", "test", "extra"), excluded_variants=("extra",), actions=actions
    )
    for criteria in configs:
        configured = replace(experiment, exposure_criteria=criteria)
        for metric in (mean("pay", math="sum", math_property="amount"), funnel("view", "pay")):
            parity.series(configured, metric, rows, [to_micros(at(h)) for h in (12, 30, 24 * DAYS)])
        parity.exposures(replace(configured, timezone="America/New_York"), rows, to_micros(at(24 * DAYS)))
