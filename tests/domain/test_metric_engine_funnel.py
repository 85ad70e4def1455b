"""Funnel metrics from events: step order types, windows, step counts, exposure rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.metric_events import by_key, event, exposure, funnel, result, spec


def counts(res: dict[str, Any]) -> dict[str, tuple[int, float, list[int]]]:
    return {k: (v["number_of_samples"], v["sum"], v["step_counts"]) for k, v in by_key(res).items()}


ROWS = [
    exposure("alice", "control", 1),
    event("view", "alice", 2),
    event("cart", "alice", 3),
    event("pay", "alice", 4),  # alice: all three steps in order
    exposure("bob", "control", 1),
    event("cart", "bob", 2),
    event("view", "bob", 3),
    event("pay", "bob", 4),  # bob: no cart after his view -> ordered stops at step 1
    exposure("carol", "test", 1),
    event("view", "carol", 0.5),  # before exposure: does not count
    event("cart", "carol", 2),
    event("pay", "carol", 3),
    exposure("dave", "test", 1),
    event("view", "dave", 2),
    event("other", "dave", 2.5),
    event("cart", "dave", 3),
]


def test_ordered_funnel_counts_steps_in_order_after_exposure() -> None:
    res = result(spec(), funnel("view", "cart", "pay"), ROWS)
    # control: alice 3 steps, bob view at 3 then nothing after -> 1 step. test: carol 0 (view before
    # exposure), dave view + cart -> 2 steps.
    assert counts(res) == {"control": (2, 1.0, [2, 1, 1]), "test": (2, 0.0, [1, 1, 0])}
    assert by_key(res)["control"]["sum_squares"] == 1.0  # funnel: sum_squares = sum


def test_unordered_funnel_counts_distinct_steps() -> None:
    res = result(spec(), funnel("view", "cart", "pay", funnel_order_type="unordered"), ROWS)
    # bob did all three (any order); carol did cart and pay after exposure; dave view and cart.
    assert counts(res) == {"control": (2, 2.0, [2, 2, 2]), "test": (2, 0.0, [2, 2, 0])}


def test_strict_funnel_breaks_on_a_step_event_out_of_sequence() -> None:
    rows = [
        exposure("erin", "control", 1),
        event("view", "erin", 2),
        event("view", "erin", 3),  # view again: restarts at step 1, still fine
        event("cart", "erin", 4),
        exposure("finn", "control", 1),
        event("view", "finn", 2),
        event("pay", "finn", 3),  # a later step's event in between breaks the run
        event("cart", "finn", 4),
    ]
    res = result(
        spec(variant_keys=("control",)), funnel("view", "cart", "pay", funnel_order_type="strict"), rows
    )
    assert counts(res)["control"] == (2, 0.0, [2, 1, 0])


def test_conversion_window_applies_to_all_steps_from_exposure() -> None:
    rows = [
        exposure("alice", "control", 0),
        event("view", "alice", 1),
        event("pay", "alice", 30),  # 30 h after exposure
        exposure("bob", "control", 0),
        event("view", "bob", 1),
        event("pay", "bob", 20),
    ]
    res = result(
        spec(variant_keys=("control",)),
        funnel("view", "pay", conversion_window=1, conversion_window_unit="day"),
        rows,
    )
    assert counts(res)["control"] == (2, 1.0, [2, 1])


def test_same_event_in_two_steps_needs_two_occurrences() -> None:
    rows = [
        exposure("a", "control", 0),
        event("view", "a", 1),
        exposure("b", "control", 0),
        event("view", "b", 1),
        event("view", "b", 2),
    ]
    res = result(spec(variant_keys=("control",)), funnel("view", "view"), rows)
    assert counts(res)["control"] == (2, 1.0, [2, 1])


@pytest.mark.parametrize("hours", [2.5, 3.5, 10])
def test_funnel_as_of_counts_only_steps_before_it(hours: float) -> None:
    res = result(spec(), funnel("view", "cart", "pay"), ROWS, hours=hours)
    alice_steps = sum(1 for h in (2, 3, 4) if h < hours)
    control = counts(res)["control"]
    assert control[1] == (1.0 if alice_steps == 3 else 0.0)
    assert control[2][min(alice_steps, 3) - 1] >= 1


def test_switched_user_leaves_the_funnel() -> None:
    rows = [*ROWS, exposure("alice", "test", 5)]
    res = result(spec(), funnel("view", "cart", "pay"), rows)
    assert counts(res)["control"] == (1, 0.0, [1, 0, 0])
