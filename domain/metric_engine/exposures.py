"""Who is in which variant, and since when (stats.md §1.1).

An exposure is the experiment's exposure event (by default `$feature_flag_called` with
`$feature_flag == <flag key>`, variant in `$feature_flag_response`; a custom event carries it in
`$feature/<flag key>`) inside [start, end], with a variant the analysis knows, passing the exposure
config's property filters and, when `filterTestAccounts` is set, the test-account rules.

Per entity we keep three instants, which answer "as of T" for every T at once:
- `first`: the first exposure; it fixes the variant (and starts the conversion window);
- `multiple`: the first exposure to a *different* variant — from then on the entity is `$multiple`
  and excluded (`multiple_variant_handling: exclude`, the default; never set for `first_seen`).
An entity counts as of T when `first < T <= multiple`, which is what re-running the exposure query
with `timestamp < T` would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.metric_engine.columns import NEVER, BoolArray, EventColumns, IntArray
from domain.metric_engine.filters import filters_mask
from domain.metric_engine.sources import Needs, scoped, source_mask, source_needs
from domain.metric_engine.spec import ExperimentSpec


@dataclass(frozen=True)
class Exposures:
    first: IntArray  # per entity: first exposure time, NEVER when never exposed
    variant: IntArray  # per entity: index into spec.variants of the first exposure, -1 when none
    multiple: IntArray  # per entity: first exposure to another variant, NEVER when none

    def exposed(self, as_of: int) -> BoolArray:
        return self.first < as_of

    def counted(self, as_of: int) -> BoolArray:
        """Exposed and not (yet) seen in a second variant."""
        return (self.first < as_of) & (self.multiple >= as_of)


def exposure_needs(spec: ExperimentSpec) -> Needs:
    needs = source_needs(spec.exposure_source, spec.actions)
    keys = {spec.variant_property}
    if spec.is_default_exposure:
        keys.add("$feature_flag")
    if spec.filter_test_accounts:
        keys |= {str(f["key"]) for f in spec.test_account_filters}
    return needs | scoped(keys, needs.events)


def in_experiment_window(events: EventColumns, spec: ExperimentSpec) -> BoolArray:
    """Rows inside [start, end]: the only data any analysis of this experiment reads."""
    mask = events.timestamp >= spec.start
    if spec.end is not None:
        mask &= events.timestamp <= spec.end
    return mask


def variant_codes(events: EventColumns, spec: ExperimentSpec) -> IntArray:
    """Per row: index of the exposure's variant in spec.variants, or -1 (absent, unknown, excluded)."""
    column = events.column(spec.variant_property)
    index = {key: i for i, key in enumerate(spec.variants)}
    table = np.asarray(
        [index.get(v, -1) if isinstance(v, str) else -1 for v in column.values], dtype=np.int64
    )
    return column.lookup(table, -1).astype(np.int64)


def exposure_rows(events: EventColumns, spec: ExperimentSpec) -> tuple[IntArray, IntArray]:
    """(row positions, variant codes) of the qualifying exposure events, in time order."""
    codes = variant_codes(events, spec)
    mask = source_mask(events, spec.exposure_source, spec.actions) & (codes >= 0)
    mask &= in_experiment_window(events, spec)
    if spec.is_default_exposure:
        mask &= filters_mask(events, [{"key": "$feature_flag", "operator": "exact", "value": spec.flag_key}])
    if spec.filter_test_accounts:
        mask &= filters_mask(events, spec.test_account_filters)
    rows = np.flatnonzero(mask)
    return rows, codes[rows]


def first_per_entity(entity: IntArray) -> tuple[IntArray, IntArray]:
    """(distinct entities, index of each one's first row) for rows in time order."""
    unique, first = np.unique(entity, return_index=True)
    return unique.astype(np.int64), first.astype(np.int64)


def build_exposures(events: EventColumns, spec: ExperimentSpec) -> Exposures:
    rows, codes = exposure_rows(events, spec)
    entity = events.entity[rows]
    times = events.timestamp[rows]
    count = events.entity_count
    first = np.full(count, NEVER, dtype=np.int64)
    variant = np.full(count, -1, dtype=np.int64)
    multiple = np.full(count, NEVER, dtype=np.int64)
    who, at = first_per_entity(entity)
    first[who] = times[at]
    variant[who] = codes[at]
    if not spec.first_seen:
        switched = codes != variant[entity]
        who, at = first_per_entity(entity[switched])
        multiple[who] = times[switched][at]
    return Exposures(first=first, variant=variant, multiple=multiple)


def position_at_or_after(events: EventColumns, times: IntArray) -> IntArray:
    """Row position of the first event at or after each time (events.size when none)."""
    return np.searchsorted(events.timestamp, times, side="left").astype(np.int64)
