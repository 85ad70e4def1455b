"""Metric sources (EventsNode / ActionsNode): which events they select, what value each carries,
and which event names and properties the database must load for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from domain.flag_properties import parse_number
from domain.metric_engine.columns import BoolArray, EventColumns, FloatArray
from domain.metric_engine.errors import MetricEngineError
from domain.metric_engine.filters import filter_keys, filters_mask
from domain.metric_engine.spec import ActionSteps, Source
from domain.metrics.schema import ActionsNode, EventsNode

# Math an events table can answer; `hogql` and `unique_group` need a query engine / group columns.
NUMERIC_MATH = frozenset({"sum", "avg", "min", "max"})
DISTINCT_MATH = frozenset({"unique_session", "dau"})
SUPPORTED_MATH = frozenset({"total"}) | NUMERIC_MATH | DISTINCT_MATH
SESSION_PROPERTY = "$session_id"
URL_PROPERTY = "$current_url"
_ELEMENT_STEP_KEYS = ("selector", "tag_name", "text", "href")


Names = frozenset[str] | None  # event names; None = every event


def _union(a: Names, b: Names) -> Names:
    return None if a is None or b is None else a | b


@dataclass(frozen=True)
class Needs:
    """What to load: event names, and each property key with the events it is read on.

    Scoping properties to events lets the database skip JSON extraction on rows that never read
    them (a funnel reads the variant only on exposure events); other rows see the key as absent,
    which is harmless because every reader first selects rows by event.
    """

    events: Names
    properties: Mapping[str, Names] = field(default_factory=dict)

    def __or__(self, other: Needs) -> Needs:
        keys = dict(self.properties)
        for key, names in other.properties.items():
            keys[key] = _union(keys[key], names) if key in keys else names
        return Needs(events=_union(self.events, other.events), properties=keys)


def scoped(keys: Iterable[str], names: Names) -> Needs:
    return Needs(events=names, properties=dict.fromkeys(keys, names))


NOTHING = Needs(events=frozenset())


def math_of(source: Source) -> str:
    math = source.math
    value = str(getattr(math, "value", math)) if math is not None else "total"
    if value not in SUPPORTED_MATH:
        raise MetricEngineError(f"Math '{value}' is not supported for experiment metrics in Flagship")
    return value


def _steps(source: ActionsNode, actions: Mapping[int, ActionSteps]) -> ActionSteps:
    steps = actions.get(source.id)
    if steps is None:
        raise MetricEngineError(f"Action {source.id} does not exist")
    for step in steps:
        if any(step.get(key) for key in _ELEMENT_STEP_KEYS):
            raise MetricEngineError(f"Action {source.id} matches page elements, which is not supported")
    return steps


def _check(source: Source) -> EventsNode | ActionsNode:
    if not isinstance(source, EventsNode | ActionsNode):
        raise MetricEngineError("Data warehouse metric sources are not supported")
    return source


def _value_keys(source: Source) -> set[str]:
    math = math_of(source)
    if math in NUMERIC_MATH:
        if not source.math_property:
            raise MetricEngineError(f"Math '{math}' needs a math_property")
        return {source.math_property}
    return {SESSION_PROPERTY} if math == "unique_session" else set()


def source_needs(source: Source, actions: Mapping[int, ActionSteps]) -> Needs:
    node = _check(source)
    keys = filter_keys(node.properties) | filter_keys(node.fixedProperties) | _value_keys(node)
    if isinstance(node, EventsNode):
        return scoped(keys, None if node.event is None else frozenset({node.event}))
    needs = NOTHING
    for step in _steps(node, actions):
        names = frozenset({str(step["event"])}) if step.get("event") else None
        step_keys = filter_keys(step.get("properties")) | ({URL_PROPERTY} if step.get("url") else set())
        needs = needs | scoped(step_keys, names) | Needs(events=names)
    return needs | scoped(keys, needs.events)


def needs_of(sources: Iterable[Source], actions: Mapping[int, ActionSteps]) -> Needs:
    needs = NOTHING
    for source in sources:
        needs = needs | source_needs(source, actions)
    return needs


def _url_mask(events: EventColumns, url: str, matching: str | None) -> BoolArray:
    column = events.column(URL_PROPERTY)
    if matching == "regex":
        pattern = re.compile(url)
        test: Any = lambda text: pattern.search(text) is not None  # noqa: E731
    elif matching == "exact":
        test = lambda text: text == url  # noqa: E731
    else:  # upstream's default is "contains"
        test = lambda text: url in text  # noqa: E731
    table = np.fromiter((isinstance(v, str) and test(v) for v in column.values), dtype=bool)
    return column.lookup(table, False)


def _step_mask(events: EventColumns, step: Mapping[str, Any]) -> BoolArray:
    mask = events.is_event(step.get("event") or None)
    mask = mask & filters_mask(events, step.get("properties"))
    if step.get("url"):
        mask &= _url_mask(events, str(step["url"]), step.get("url_matching"))
    return mask


def source_mask(events: EventColumns, source: Source, actions: Mapping[int, ActionSteps]) -> BoolArray:
    """Rows the source selects: its event (or any action step) and all its property filters."""
    node = _check(source)
    if isinstance(node, EventsNode):
        mask = events.is_event(node.event)
    else:
        mask = np.zeros(events.size, dtype=bool)
        for step in _steps(node, actions):
            mask |= _step_mask(events, step)
    mask &= filters_mask(events, node.properties)
    return mask & filters_mask(events, node.fixedProperties)


def numeric_values(events: EventColumns, key: str) -> FloatArray:
    """`coalesce(toFloat(property), 0)` per event: numbers and numeric strings, else 0."""
    column = events.column(key)
    table = np.asarray([parse_number(v) or 0.0 for v in column.values], dtype=np.float64)
    return column.lookup(table, 0.0).astype(np.float64)
