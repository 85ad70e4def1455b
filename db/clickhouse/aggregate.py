"""Per-entity columns joined on the exposures, then per-variant sufficient statistics per day.

`entity_table` LEFT JOINs per-entity parts (metric values, funnel reach, retention instants, CUPED's
covariate) onto the exposures, one row per exposed entity. `stats_sql` aggregates that table
per variant into one array per statistic, one element per boundary, using the embedded engine's
rules for each boundary `b`:

- exposed: `first < b`; counted: exposed and `multiple >= b` (not yet seen in a second variant);
- matured (`only_count_matured_users` with a conversion window): `first <= b - window`;
- the winsorization pool: exposed and matured, all variants; groups: pool and counted.

Winsorization bounds are exact type-7 quantiles (`quantileExactInclusive`, numpy's default, as
`domain.stats.winsorize` defines them) of each day's pool, taken by window functions over the whole
table so the events are scanned once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from db.clickhouse import sql
from db.clickhouse.exposures import Scope


@dataclass(frozen=True)
class Part:
    """A per-entity subquery (`entity, <columns>`) and each column's value for entities it lacks.

    Array columns are told from the LEFT JOIN's filler by `empty`; a scalar column's default must be
    its type's zero, which is what the join fills in (`ifNull` covers `join_use_nulls` too)."""

    query: str
    defaults: Mapping[str, str]
    scalars: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outliers:
    lower: float | None = None
    upper: float | None = None
    ignore_zeros: bool = False

    @property
    def any(self) -> bool:
        return self.lower is not None or self.upper is not None


def entity_table(exposures: str, parts: Sequence[Part]) -> str:
    columns = ["x.entity AS entity", "x.first AS first", "x.variant AS variant", "x.multiple AS multiple"]
    joins = []
    for i, part in enumerate(parts):
        joins.append(f"LEFT JOIN ({part.query}) AS p{i} ON x.entity = p{i}.entity")
        columns += [
            f"if(empty(p{i}.{c}), {default}, p{i}.{c}) AS {c}" for c, default in part.defaults.items()
        ]
        columns += [f"ifNull(p{i}.{c}, {default}) AS {c}" for c, default in part.scalars.items()]
    return f"SELECT {', '.join(columns)} FROM ({exposures}) AS x {' '.join(joins)}"


def zeros(scope: Scope) -> str:
    return f"arrayWithConstant({scope.days}, 0.)"


def per_day(scope: Scope, expression: str) -> str:
    """An array with `expression` evaluated for each boundary `b` (day index `i`, from 1)."""
    return f"arrayMap((b, i) -> {expression}, {scope.boundaries}, range(1, {scope.days + 1}))"


def pool(window: int, matured: bool) -> str:
    return "first < b" + (f" AND first <= b - {sql.integer(window)}" if matured and window else "")


def counted(window: int, matured: bool) -> str:
    return f"{pool(window, matured)} AND multiple >= b"


def _quantile(level: float, column: str, condition: str) -> str:
    return f"quantileExactInclusiveIfForEach({sql.number(level)})({column}, {condition}) OVER ()"


def bound_columns(scope: Scope, column: str, outliers: Outliers, in_pool: str) -> list[str]:
    """Window columns `<column>_lo`, `<column>_hi` (per day) for a winsorized column."""
    if not outliers.any:
        return []
    mask = per_day(scope, in_pool)
    if outliers.lower is None:
        columns = [f"arrayWithConstant({scope.days}, -inf) AS {column}_lo"]
    else:
        columns = [f"{_quantile(outliers.lower, column, mask)} AS {column}_lo"]
    if outliers.upper is None:
        columns.append(f"arrayWithConstant({scope.days}, inf) AS {column}_hi")
    elif outliers.ignore_zeros:
        nonzero = f"arrayMap((v, m) -> m AND v != 0, {column}, {mask})"
        count = f"sumForEach(arrayMap(m -> toUInt64(m), {nonzero})) OVER ()"
        quantile = _quantile(outliers.upper, column, nonzero)
        # Only zeros in the pool: nothing to compute a cap from, so no upper cap.
        columns.append(f"arrayMap((q, n) -> if(n = 0, inf, q), {quantile}, {count}) AS {column}_hi")
    else:
        columns.append(f"{_quantile(outliers.upper, column, mask)} AS {column}_hi")
    return columns


def value(column: str, outliers: Outliers) -> str:
    """Day i's value of a column, clamped like `domain.stats.clamp` when winsorized."""
    if not outliers.any:
        return f"{column}[i]"
    return f"least(greatest({column}[i], {column}_lo[i]), {column}_hi[i])"


@dataclass(frozen=True)
class StatsQuery:
    """The query, and the statistics each of its rows carries after `variant` (arrays, one per day)."""

    text: str
    names: tuple[str, ...]


def stats_sql(table: str, windows: Sequence[str], sums: Mapping[str, str]) -> StatsQuery:
    """Per variant: for each named expression, `sumForEach` over the entities of its per-day array."""
    source = f"(SELECT *, {', '.join(windows)} FROM ({table}))" if windows else f"({table})"
    selected = ", ".join(f"sumForEach({expression}) AS {name}" for name, expression in sums.items())
    return StatsQuery(
        f"SELECT variant, {selected} FROM {source} GROUP BY variant ORDER BY variant", tuple(sums)
    )
