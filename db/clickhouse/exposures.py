"""Who is in which variant, and since when, in ClickHouse SQL (`domain.metric_engine.exposures`).

`Scope` is one analysis: the experiment, the project, the day boundaries. Its `scan` is the only
place that reads the events table; every other piece is a subquery over scans, so a new per-entity
column (CUPED's pre-exposure covariate) is one more scan joined on `entity`.

Per exposed entity the exposures subquery keeps the embedded engine's three facts: `first` (the first
exposure, which fixes `variant`) and `multiple` (the first exposure to another variant; NEVER with
`first_seen` handling). Ties of equal timestamps break by `seq`, the capture order, as the embedded
engine breaks them by row id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from db.clickhouse import sql
from db.clickhouse.filters import filter_sql, filters_sql, source_sql
from domain.metric_engine import ExperimentSpec, Needs, zone

_EXPOSURE_EVENT_FILTER = "$feature_flag"


@dataclass(frozen=True)
class Scope:
    """One analysis: where the events are, which experiment, and the boundaries it is answered at."""

    database: str
    team_id: int
    spec: ExperimentSpec
    as_of: tuple[int, ...]  # ascending µs: each day's `query_to`

    @property
    def until(self) -> int:
        """Exclusive upper bound of every scan: the last boundary, or just past the end."""
        last = max(self.as_of)
        return min(last, self.spec.end + 1) if self.spec.end is not None else last

    @property
    def timezone(self) -> str:
        """The project's zone as the embedded engine reads it (an unknown name is UTC)."""
        return zone(self.spec.timezone).key

    @property
    def days(self) -> int:
        return len(self.as_of)

    @property
    def boundaries(self) -> str:
        return sql.integers(self.as_of)

    def scan(self, needs: Needs, where: str, columns: Sequence[str] = (), since: int | None = None) -> str:
        """The project's events in the experiment window, deduplicated (FINAL), as `entity, ts, seq`.

        `since` moves the window's start earlier (CUPED's covariate reads the lookback before it).
        `needs.events` (when known) narrows the scan by the sorting key's `event` column."""
        spec = self.spec
        conditions = [
            f"team_id = {sql.integer(self.team_id)}",
            f"timestamp >= {sql.instant(spec.start if since is None else since)}",
            f"timestamp < {sql.instant(self.until)}",
        ]
        if spec.end is not None:
            conditions.append(f"timestamp <= {sql.instant(spec.end)}")
        if needs.events is not None:
            names = ", ".join(sql.string(n) for n in sorted(needs.events)) or "''"
            conditions.append(f"event IN ({names})")
        conditions.append(f"({where})")
        selected = ["distinct_id AS entity", "toUnixTimestamp64Micro(timestamp) AS ts", "seq", *columns]
        return (
            f"SELECT {', '.join(selected)} FROM {self.database}.events FINAL WHERE {' AND '.join(conditions)}"
        )


def variant_sql(spec: ExperimentSpec) -> str:
    """Index of the exposure's variant in `spec.variants`, or -1 (absent, not a string, unknown)."""
    key = spec.variant_property
    return f"toInt64(if({sql.is_text(key)}, indexOf({sql.strings(spec.variants)}, {sql.text(key)}), 0)) - 1"


def exposure_predicate(spec: ExperimentSpec) -> str:
    parts = [source_sql(spec.exposure_source, spec.actions)]
    if spec.is_default_exposure:
        parts.append(filter_sql({"key": _EXPOSURE_EVENT_FILTER, "operator": "exact", "value": spec.flag_key}))
    if spec.filter_test_accounts:
        parts.append(filters_sql(spec.test_account_filters))
    return " AND ".join(f"({part})" for part in parts)


def exposures_sql(scope: Scope, needs: Needs) -> str:
    """One row per exposed entity: `entity, first, variant, multiple`."""
    rows = scope.scan(needs, exposure_predicate(scope.spec), [f"{variant_sql(scope.spec)} AS code"])
    if scope.spec.first_seen:
        multiple = sql.integer(sql.NEVER)
    else:
        others = "arrayFilter(x -> x.2 != variant, groupArray((ts, code)))"
        multiple = f"arrayMin(arrayMap(x -> x.1, arrayPushBack({others}, ({sql.NEVER}, -1))))"
    return (
        "SELECT entity, min(ts) AS first, argMin(code, (ts, seq)) AS variant, "
        f"toInt64({multiple}) AS multiple FROM ({rows}) WHERE code >= 0 GROUP BY entity"
    )


def exposure_counts_sql(scope: Scope, needs: Needs, first_day: str) -> str:
    """Entities exposed before the (single) boundary per (label, local day of first exposure).

    Label: the variant's index, or `len(variants)` for `$multiple`; day 0 is `first_day` (ISO date)."""
    at = sql.integer(scope.as_of[-1])
    label = f"if(multiple < {at}, {len(scope.spec.variants)}, variant)"
    tz = sql.string(scope.timezone)
    day = f"dateDiff('day', toDate({sql.string(first_day)}), toDate(fromUnixTimestamp64Micro(first, 'UTC'), {tz}))"
    return (
        f"SELECT {label} AS label, {day} AS day, count() AS entities "
        f"FROM ({exposures_sql(scope, needs)}) WHERE first < {at} GROUP BY label, day ORDER BY label, day"
    )
