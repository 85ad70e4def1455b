"""Event property filters (`properties` lists on metric sources and exposure configs), with HogQL's
semantics rather than the flag SDK's.

The two differ where it matters for analysis: HogQL's `exact` is case-sensitive (the SDK lowercases),
and a property that is absent or JSON `null` satisfies the negative operators (`is_not`,
`not_icontains`, `not_regex`, `is_not_set`) and fails every other one, because HogQL compares
`NULL` and wraps negations in `ifNull(…, 1)`. Operators HogQL and the SDK agree on (dates, semver)
reuse `domain.flag_properties`.

`person` filters are evaluated against the event's own properties: Flagship stores no person
profiles, and SDKs send person traits (`email`, `$set`) with events. Cohort, HogQL, element and group
filters cannot be evaluated from events alone and raise `MetricEngineError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from domain.flag_properties import InconclusiveMatchError, compile_property, parse_number, to_property_string
from domain.linear_regex import RegexError, compile_pattern, regex_error_detail, search
from domain.metric_engine.columns import BoolArray, EventColumns
from domain.metric_engine.errors import MetricEngineError

Predicate = Callable[[Any], bool]

NEGATIVE_OPERATORS = frozenset({"is_not", "not_icontains", "not_regex", "is_not_set"})
_EVENT_TYPES = frozenset({None, "event", "person"})
_ORDERINGS: dict[str, Callable[[float, float], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
}
_DELEGATED = frozenset({"is_date_before", "is_date_after"})

# Test accounts (`exposure_criteria.filterTestAccounts`). PostHog applies the team's
# `test_account_filters`; a new team's default is the localhost `$host` rule below, plus an
# internal-email rule. Flagship has no per-team list yet, so it applies these fixed rules:
#  1. `$host` is localhost, 127.0.0.1 or [::1] (any port) -> test account (PostHog's default rule);
#  2. `email` ends in a domain reserved for testing by RFC 2606 / RFC 6761 (example.com/.net/.org,
#     *.test, *.example, *.invalid, *.localhost) -> test account.
# Events without these properties are not test-account events (HogQL's not_regex on NULL passes).
TEST_ACCOUNT_FILTERS: tuple[Mapping[str, Any], ...] = (
    {
        "key": "$host",
        "operator": "not_regex",
        "value": r"^(localhost|127\.0\.0\.1|\[::1\])($|:)",
        "type": "event",
    },
    {
        "key": "email",
        "operator": "not_regex",
        "value": r"(?i)@([^@]*\.)?(example\.(com|net|org)|[^@.]+\.(test|example|invalid|localhost))$",
        "type": "person",
    },
)


def _text(value: Any) -> str | None:
    try:
        return to_property_string(value)
    except InconclusiveMatchError:
        return None


def _exact(value: Any) -> Predicate:
    targets = frozenset(_text(v) for v in (value if isinstance(value, list) else [value])) - {None}
    return lambda raw: _text(raw) in targets


def _icontains(value: Any) -> Predicate:
    needle = (_text(value) or "").lower()
    return lambda raw: needle in (_text(raw) or "").lower()


def _regex(value: Any) -> Predicate:
    # RE2, as ClickHouse's match() runs it: linear time whatever the pattern.
    try:
        pattern = compile_pattern(str(value))
    except RegexError as error:
        raise MetricEngineError(regex_error_detail(error.pattern, error.reason)) from None
    return lambda raw: search(pattern, _text(raw) or "")


def _ordering(operator: str, value: Any) -> Predicate:
    bound = parse_number(value)
    compare = _ORDERINGS[operator]
    if bound is None:
        return lambda raw: False
    return lambda raw: (number := parse_number(raw)) is not None and compare(number, bound)


def _delegated(prop: Mapping[str, Any]) -> Predicate:
    matcher = compile_property({**prop, "type": "person"})
    key = prop["key"]
    return lambda raw: matcher({key: raw}) is True


_NEGATED = {"is_not": "exact", "not_icontains": "icontains", "not_regex": "regex"}


def _positive(operator: str, prop: Mapping[str, Any]) -> Predicate:
    """The test for a present, non-null value, before any negation."""
    value = prop.get("value")
    base = _NEGATED.get(operator, operator)
    if base == "exact":
        return _exact(value)
    if base == "icontains":
        return _icontains(value)
    if base == "regex":
        return _regex(value)
    if base in _ORDERINGS:
        return _ordering(base, value)
    if base in _DELEGATED or base.startswith("semver_"):
        return _delegated(prop)
    raise MetricEngineError(f"Property filter operator '{operator}' is not supported")


def value_predicate(prop: Mapping[str, Any]) -> tuple[str, Predicate, bool]:
    """(key, test for present values, result for absent or null values) of one filter."""
    if not isinstance(prop, Mapping) or not isinstance(prop.get("key"), str):
        raise MetricEngineError("Property filters must be objects with a string 'key'")
    if prop.get("type") not in _EVENT_TYPES:
        raise MetricEngineError(f"Property filters of type '{prop.get('type')}' are not supported")
    key, operator = prop["key"], prop.get("operator") or "exact"
    if operator in ("is_set", "is_not_set"):
        return key, lambda raw: operator == "is_set", operator == "is_not_set"
    positive = _positive(operator, prop)
    if operator in NEGATIVE_OPERATORS:
        return key, lambda raw: not positive(raw), True
    return key, positive, False


def filter_mask(events: EventColumns, prop: Mapping[str, Any]) -> BoolArray:
    """Rows passing one filter: evaluated once per distinct value, broadcast by code."""
    key, test, absent = value_predicate(prop)
    column = events.column(key)
    table = np.fromiter(
        (absent if value is None else test(value) for value in column.values),
        dtype=bool,
        count=len(column.values),
    )
    return column.lookup(table, absent)


def filters_mask(events: EventColumns, props: Sequence[Mapping[str, Any]] | None) -> BoolArray:
    """AND of all filters (an empty list passes every row)."""
    mask = np.ones(events.size, dtype=bool)
    for prop in props or ():
        mask &= filter_mask(events, prop)
    return mask


def filter_keys(props: Iterable[Mapping[str, Any]] | None) -> set[str]:
    return {p["key"] for p in props or () if isinstance(p, Mapping) and isinstance(p.get("key"), str)}
