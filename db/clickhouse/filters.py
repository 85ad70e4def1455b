"""Metric sources and property filters as ClickHouse predicates, with the embedded engine's semantics.

The rules are `domain.metric_engine.filters` / `sources`: this module only spells them in SQL. The
domain validates each filter first (`value_predicate`: the same errors for the same definitions), and
filter values are turned into text by the domain's own function, so only the comparison runs here.

Where SQL and Python can disagree (ARCHITECTURE.md "ClickHouse events backend"): regular expressions
run on RE2 instead of Python's `re`, `icontains` lowers with ClickHouse's UTF-8 rules (identical for
ASCII), and a non-string value is compared as ClickHouse prints its JSON (object keys keep their
stored order; numbers beyond 1e16 print without an exponent). The operators the domain delegates to
the flag matcher (dates, semver) are refused on this backend rather than approximated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from db.clickhouse import sql
from domain.flag_properties import parse_number
from domain.metric_engine import MetricEngineError
from domain.metric_engine.filters import NEGATIVE_OPERATORS, value_predicate
from domain.metric_engine.filters import _text as property_text
from domain.metric_engine.sources import URL_PROPERTY
from domain.metric_engine.spec import ActionSteps, Source
from domain.metrics.schema import ActionsNode, EventsNode

_ORDERINGS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_POSITIVE = {"is_not": "exact", "not_icontains": "icontains", "not_regex": "regex"}


def _exact(key: str, value: Any) -> str:
    texts = (property_text(v) for v in (value if isinstance(value, list) else [value]))
    targets = sorted({t for t in texts if t is not None})
    if not targets:
        return "0"
    return f"{sql.text(key)} IN ({', '.join(sql.string(t) for t in targets)})"


def _icontains(key: str, value: Any) -> str:
    needle = (property_text(value) or "").lower()
    return f"positionUTF8(lowerUTF8({sql.text(key)}), {sql.string(needle)}) > 0"


def _ordering(key: str, operator: str, value: Any) -> str:
    bound = parse_number(value)
    if bound is None:
        return "0"
    return f"ifNull({sql.number_or_null(key)} {_ORDERINGS[operator]} {sql.number(bound)}, 0)"


def _present(key: str, operator: str, value: Any) -> str:
    """The test on a present, non-null value, before any negation."""
    base = _POSITIVE.get(operator, operator)
    if base == "exact":
        return _exact(key, value)
    if base == "icontains":
        return _icontains(key, value)
    if base == "regex":
        return f"match({sql.text(key)}, {sql.string(str(value))})"
    if base in _ORDERINGS:
        return _ordering(key, base, value)
    raise MetricEngineError(
        f"Property filter operator '{operator}' is not supported by the ClickHouse events backend"
    )


def filter_sql(prop: Mapping[str, Any]) -> str:
    """One filter: absent or null values get the operator's fixed answer (HogQL's), others the test."""
    key, _test, absent = value_predicate(prop)  # validates exactly as the embedded engine does
    operator = prop.get("operator") or "exact"
    if operator in ("is_set", "is_not_set"):
        present = "1" if operator == "is_set" else "0"
    else:
        present = _present(key, operator, prop.get("value"))
        if operator in NEGATIVE_OPERATORS:
            present = f"NOT ({present})"
    return f"if({sql.is_null(key)}, {int(absent)}, {present})"


def filters_sql(props: Sequence[Mapping[str, Any]] | None) -> str:
    """AND of all filters (an empty list passes every row)."""
    parts = [filter_sql(prop) for prop in props or ()]
    return " AND ".join(f"({part})" for part in parts) if parts else "1"


def event_sql(name: str | None) -> str:
    return "1" if name is None else f"event = {sql.string(name)}"


def _url_sql(url: str, matching: str | None) -> str:
    value = sql.text_or_empty(URL_PROPERTY)
    if matching == "regex":
        test = f"match({value}, {sql.string(url)})"
    elif matching == "exact":
        test = f"{value} = {sql.string(url)}"
    else:  # upstream's default is "contains"
        test = f"position({value}, {sql.string(url)}) > 0"
    return f"({sql.is_text(URL_PROPERTY)} AND {test})"


def _step_sql(step: Mapping[str, Any]) -> str:
    parts = [event_sql(step.get("event") or None), filters_sql(step.get("properties"))]
    if step.get("url"):
        parts.append(_url_sql(str(step["url"]), step.get("url_matching")))
    return "(" + " AND ".join(parts) + ")"


def source_sql(source: Source, actions: Mapping[int, ActionSteps]) -> str:
    """Rows the source selects: its event (or any action step) and all its property filters.

    The metric was validated by `metric_needs` first (math, action existence, element steps)."""
    if isinstance(source, EventsNode):
        selected = event_sql(source.event)
    elif isinstance(source, ActionsNode):
        steps = actions.get(source.id, ())
        selected = "(" + " OR ".join(_step_sql(step) for step in steps) + ")" if steps else "0"
    else:
        raise MetricEngineError("Data warehouse metric sources are not supported")
    return f"({selected} AND {filters_sql(source.properties)} AND {filters_sql(source.fixedProperties)})"
