"""Property filters on metric sources: HogQL semantics (absent and null values, case, numbers)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.metric_engine import MetricEngineError, events_from_rows
from domain.metric_engine.filters import TEST_ACCOUNT_FILTERS, filter_mask, filters_mask
from tests.support.metric_events import at

VALUES: list[Any] = ["Pro plan", "pro", 42, "7.5", None, True, "1.2.3"]
ROWS = [("e", f"u{i}", at(i), {"v": v}) for i, v in enumerate(VALUES)] + [("e", "absent", at(9), {})]
EVENTS = events_from_rows(ROWS)


def passing(operator: str, value: Any = None) -> list[Any]:
    mask = filter_mask(EVENTS, {"key": "v", "operator": operator, "value": value, "type": "event"})
    return [row[3].get("v", "absent") for row, keep in zip(ROWS, mask, strict=True) if keep]


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("exact", "pro", ["pro"]),  # case-sensitive, unlike the flag SDK
        ("exact", ["pro", 42], ["pro", 42]),
        ("exact", "true", [True]),
        ("is_not", "pro", ["Pro plan", 42, "7.5", None, True, "1.2.3", "absent"]),
        ("icontains", "PRO", ["Pro plan", "pro"]),
        ("not_icontains", "pro", [42, "7.5", None, True, "1.2.3", "absent"]),
        ("regex", r"^\d", [42, "7.5", "1.2.3"]),
        ("not_regex", r"^\d", ["Pro plan", "pro", None, True, "absent"]),
        ("gt", "10", [42]),
        ("lte", 7.5, ["7.5"]),
        ("is_set", None, ["Pro plan", "pro", 42, "7.5", True, "1.2.3"]),
        ("is_not_set", None, [None, "absent"]),
        ("semver_gte", "1.2.0", [42, "7.5", "1.2.3"]),  # delegated to the flag matcher: "7.5" is 7.5.0
    ],
)
def test_operators(operator: str, value: Any, expected: list[Any]) -> None:
    assert passing(operator, value) == expected


def test_filters_are_anded_and_empty_passes_all() -> None:
    both = [
        {"key": "v", "operator": "icontains", "value": "pro"},
        {"key": "v", "operator": "exact", "value": "pro"},
    ]
    assert filters_mask(EVENTS, both).tolist() == [False, True] + [False] * 6
    assert filters_mask(EVENTS, []).all()


def test_test_account_rules() -> None:
    rows = [
        ("e", "a", at(0), {"$host": "localhost:3000"}),
        ("e", "b", at(0), {"$host": "127.0.0.1"}),
        ("e", "c", at(0), {"$host": "app.localhost.io", "email": "c@Example.com"}),
        ("e", "d", at(0), {"email": "d@qa.shop.test"}),
        ("e", "e", at(0), {"email": "e@notexample.com", "$host": "shop.io"}),
        ("e", "f", at(0), {}),
    ]
    assert filters_mask(events_from_rows(rows), TEST_ACCOUNT_FILTERS).tolist() == [
        False,
        False,
        False,
        False,
        True,
        True,
    ]


def test_unsupported_filters_raise() -> None:
    with pytest.raises(MetricEngineError, match="operator 'between'"):
        passing("between", [1, 2])
    with pytest.raises(MetricEngineError, match="Invalid regular expression"):
        passing("regex", "(")
