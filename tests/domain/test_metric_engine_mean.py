"""Mean metrics from events, against hand-computed per-entity values."""

from __future__ import annotations

import pytest

from domain.metric_engine import MetricEngineError, to_micros
from tests.support.metric_events import at, by_key, event, exposure, mean, result, spec, sums

# Alice and Bob in control, Carol and Dave in test; every number below is worked out by hand.
BASE = [
    exposure("alice", "control", 1),
    exposure("bob", "control", 2),
    exposure("carol", "test", 3),
    exposure("dave", "test", 4),
    event("purchase", "alice", 5, amount=10),
    event("purchase", "alice", 30, amount="2.5"),  # numeric strings count (toFloat)
    event("purchase", "bob", 6, amount="n/a"),  # not a number: 0 for sum, still 1 for count
    event("purchase", "carol", 2, amount=100),  # before Carol's exposure: ignored
    event("purchase", "carol", 7, amount=4),
    event("purchase", "carol", 8, amount=6),
]


def test_sum_of_property_per_entity_then_squared() -> None:
    res = result(spec(), mean(math="sum", math_property="amount"), BASE)
    # control: alice 12.5, bob 0 -> n 2, sum 12.5, sum_squares 156.25; test: carol 10, dave 0.
    assert sums(res) == {"control": (2, 12.5, 156.25), "test": (2, 10.0, 100.0)}


def test_total_counts_events() -> None:
    res = result(spec(), mean(), BASE)
    # control: alice 2, bob 1 -> sum 3, squares 4 + 1; test: carol 2, dave 0.
    assert sums(res) == {"control": (2, 3.0, 5.0), "test": (2, 2.0, 4.0)}


@pytest.mark.parametrize(
    ("math", "control", "test"),
    [
        ("avg", (2, 6.25, 39.0625), (2, 5.0, 25.0)),  # alice avg(10, 2.5); carol avg(4, 6)
        ("min", (2, 2.5, 6.25), (2, 4.0, 16.0)),
        ("max", (2, 10.0, 100.0), (2, 6.0, 36.0)),
    ],
)
def test_avg_min_max(math: str, control: tuple[int, float, float], test: tuple[int, float, float]) -> None:
    res = result(spec(), mean(math=math, math_property="amount"), BASE)
    assert sums(res) == {"control": control, "test": test}


def test_unique_sessions_and_active_days() -> None:
    rows = [
        exposure("alice", "control", 1),
        exposure("carol", "test", 1),
        event("view", "alice", 2, **{"$session_id": "s1"}),
        event("view", "alice", 3, **{"$session_id": "s1"}),
        event("view", "alice", 26, **{"$session_id": "s2"}),
        event("view", "alice", 27, **{"$session_id": ""}),  # empty session ids count no session
        event("view", "carol", 2),
    ]
    sessions = result(spec(), mean("view", math="unique_session"), rows)
    assert sums(sessions) == {"control": (1, 2.0, 4.0), "test": (1, 0.0, 0.0)}
    days = result(spec(), mean("view", math="dau"), rows)
    assert sums(days) == {"control": (1, 2.0, 4.0), "test": (1, 1.0, 1.0)}


def test_switched_variant_users_are_excluded_from_the_day_they_switch() -> None:
    rows = [*BASE, exposure("bob", "test", 40)]
    before = result(spec(), mean(math="sum", math_property="amount"), rows, hours=24)
    after = result(spec(), mean(math="sum", math_property="amount"), rows, hours=48)
    assert sums(before)["control"] == (2, 10.0, 100.0)  # as of hour 24: bob still in control
    assert sums(after)["control"] == (1, 12.5, 156.25)  # bob is `$multiple` from hour 40


def test_first_seen_keeps_the_first_variant() -> None:
    rows = [*BASE, exposure("bob", "test", 40)]
    res = result(spec(exposure_criteria={"multiple_variant_handling": "first_seen"}), mean(), rows)
    assert sums(res)["control"][0] == 2 and sums(res)["test"][0] == 2


def test_conversion_window_counts_from_first_exposure() -> None:
    res = result(
        spec(),
        mean(math="sum", math_property="amount", conversion_window=24, conversion_window_unit="hour"),
        BASE,
    )
    # Alice's purchase at hour 30 is 29 h after her exposure at hour 1: outside a 24 h window.
    assert sums(res)["control"] == (2, 10.0, 100.0)


def test_only_data_inside_start_and_end_counts() -> None:
    rows = [exposure("erin", "control", -1), *BASE, event("purchase", "bob", 20, amount=7)]
    res = result(spec(end=to_micros(at(12))), mean(math="sum", math_property="amount"), rows)
    # erin was exposed before the start; alice's 2.5 and bob's 7 come after the end.
    assert sums(res) == {"control": (2, 10.0, 100.0), "test": (2, 10.0, 100.0)}


def test_test_accounts_are_filtered_from_exposures_when_asked() -> None:
    rows = [
        *BASE,
        exposure("qa", "test", 5, **{"$host": "localhost:8000"}),
        exposure("dev", "test", 5, email="dev@shop.test"),
        exposure("real", "test", 5, **{"$host": "shop.example.org.uk"}, email="real@shop.io"),
    ]
    kept = result(spec(exposure_criteria={"filterTestAccounts": True}), mean(), rows)
    assert sums(kept)["test"][0] == 3  # carol, dave, real
    unfiltered = result(spec(exposure_criteria={"filterTestAccounts": False}), mean(), rows)
    assert sums(unfiltered)["test"][0] == 5


def test_winsorization_clamps_pooled_per_entity_values() -> None:
    rows = [exposure(f"u{i}", "control" if i % 2 else "test", 1) for i in range(1, 11)]
    rows += [event("purchase", f"u{i}", 2, amount=i * 10) for i in range(1, 11)]
    metric = mean(math="sum", math_property="amount", lower_bound_percentile=0.1, upper_bound_percentile=0.9)
    res = result(spec(), metric, rows)
    # Pooled values 10..100; type-7 quantiles: q(0.1) = 19, q(0.9) = 91.
    # control (odd): 10->19, 30, 50, 70, 90 ; test (even): 20, 40, 60, 80, 100->91.
    assert sums(res)["control"] == (5, 259.0, 19**2 + 30**2 + 50**2 + 70**2 + 90**2)
    assert sums(res)["test"] == (5, 291.0, 20**2 + 40**2 + 60**2 + 80**2 + 91**2)


def test_ignore_zeros_leaves_zeros_out_of_the_upper_bound() -> None:
    rows = [exposure(f"u{i}", "control", 1) for i in range(6)]
    rows += [event("purchase", "u4", 2, amount=10), event("purchase", "u5", 2, amount=20)]
    metric = mean(math="sum", math_property="amount", upper_bound_percentile=0.5, ignore_zeros=True)
    res = result(spec(variant_keys=("control",)), metric, rows)
    # Without zeros the median of (10, 20) is 15: u5 is capped to 15 (with zeros it would be 0).
    assert sums(res)["control"] == (6, 25.0, 100.0 + 225.0)


def test_source_property_filters() -> None:
    rows = [
        exposure("alice", "control", 1),
        event("purchase", "alice", 2, amount=5, plan="Pro"),
        event("purchase", "alice", 3, amount=7, plan="pro"),  # exact is case-sensitive in HogQL
        event("purchase", "alice", 4, amount=9),
    ]
    exact = mean(
        math="sum", math_property="amount", properties=[{"key": "plan", "operator": "exact", "value": "Pro"}]
    )
    assert sums(result(spec(variant_keys=("control",)), exact, rows))["control"] == (1, 5.0, 25.0)
    negative = mean(
        math="sum", math_property="amount", properties=[{"key": "plan", "operator": "is_not", "value": "Pro"}]
    )
    # is_not passes events without the property (HogQL's ifNull(…, 1)).
    assert sums(result(spec(variant_keys=("control",)), negative, rows))["control"] == (1, 16.0, 256.0)
    above = mean(
        math="sum", math_property="amount", properties=[{"key": "amount", "operator": "gt", "value": "6"}]
    )
    assert sums(result(spec(variant_keys=("control",)), above, rows))["control"] == (1, 16.0, 256.0)


def test_only_count_matured_users() -> None:
    metric = mean(conversion_window=1, conversion_window_unit="day")
    # Alice (exposed at hour 1) has matured at hour 25, Bob (hour 2) at hour 26 (inclusive, as upstream).
    res = result(spec(only_count_matured_users=True), metric, BASE, hours=25.5)
    assert sums(res)["control"][0] == 1
    assert sums(result(spec(only_count_matured_users=True), metric, BASE, hours=26))["control"][0] == 2


def test_holdout_is_its_own_variant_and_missing_variants_are_zero() -> None:
    rows = [*BASE, exposure("hal", "holdout-7", 2), event("purchase", "hal", 3, amount=1)]
    res = result(spec(holdout_id=7, variant_keys=("control", "test", "extra")), mean(), rows)
    assert sums(res)["holdout-7"] == (1, 1.0, 1.0)
    assert sums(res)["extra"] == (0, 0.0, 0.0)
    assert [v["key"] for v in res["variant_results"]] == ["test", "extra", "holdout-7"]


def test_custom_exposure_event_reads_the_feature_property() -> None:
    rows = [
        event("viewed_checkout", "alice", 1, **{"$feature/checkout": "control", "page": "a"}),
        event("viewed_checkout", "bob", 1, **{"$feature/checkout": "test", "page": "b"}),
        event(
            "$feature_flag_called",
            "carol",
            1,
            **{"$feature_flag": "checkout", "$feature_flag_response": "test"},
        ),
        event("purchase", "alice", 2),
    ]
    criteria = {
        "exposure_config": {
            "kind": "ExperimentEventExposureConfig",
            "event": "viewed_checkout",
            "properties": [],
        }
    }
    assert sums(result(spec(exposure_criteria=criteria), mean(), rows)) == {
        "control": (1, 1.0, 1.0),
        "test": (1, 0.0, 0.0),
    }
    filtered = {
        "exposure_config": {"event": "viewed_checkout", "properties": [{"key": "page", "value": "a"}]}
    }
    assert by_key(result(spec(exposure_criteria=filtered), mean(), rows))["test"]["number_of_samples"] == 0


def test_other_flags_and_unknown_variants_are_not_exposures() -> None:
    rows = [
        *BASE,
        ("$feature_flag_called", "zed", at(1), {"$feature_flag": "other", "$feature_flag_response": "test"}),
        exposure("yan", "not-a-variant", 1),
        exposure("xia", "control", 1, **{"$feature_flag_response": False}),
    ]
    assert sums(result(spec(), mean(), rows))["test"][0] == 2


def test_unsupported_definitions_fail_loudly() -> None:
    with pytest.raises(MetricEngineError, match="hogql"):
        result(spec(), mean(math="hogql"), BASE)
    cohort = mean(properties=[{"key": "id", "type": "cohort", "value": 3}])
    with pytest.raises(MetricEngineError, match="cohort"):
        result(spec(), cohort, BASE)
