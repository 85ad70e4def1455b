"""Outlier handling for mean (and ratio-side) metrics: winsorization (stats.md §1.4).

Bounds are quantiles of the per-entity values pooled across all variants, then every entity's
value is clamped into them before the sufficient statistics are taken.

Quantile definition: numpy's default "linear" interpolation (Hyndman-Fan type 7, the same as
ClickHouse `quantileExactInclusive`). Upstream uses ClickHouse's approximate `quantile`
(reservoir sampling), which is not reproducible; an exact rule is, so results can differ from
PostHog's slightly on large data, never systematically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from domain.stats.sufficient import FloatArray


@dataclass(frozen=True)
class WinsorizationBounds:
    lower: float
    upper: float


def _check_percentile(value: float | None, name: str) -> None:
    # Percentiles are fractions (0.99), as in the metric schema; 99 is a common slip worth catching.
    if value is not None and not 0 <= value <= 1:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")


def winsorization_bounds(
    pooled_values: npt.ArrayLike,
    lower_bound_percentile: float | None = None,
    upper_bound_percentile: float | None = None,
    *,
    ignore_zeros: bool = False,
) -> WinsorizationBounds | None:
    """Clamp bounds from the pooled per-entity values; None when there are no values.

    An unset percentile means no bound on that side (min / max, as upstream). `ignore_zeros`
    leaves the zero values out of the *upper* bound's quantile, matching the UI's "Ignore zeros
    when calculating upper bound" and GrowthBook's semantics (PostHog's own SQL was not found);
    when every value is zero there is nothing to compute a cap from, so no upper cap applies.
    """
    _check_percentile(lower_bound_percentile, "lower_bound_percentile")
    _check_percentile(upper_bound_percentile, "upper_bound_percentile")
    values = np.asarray(pooled_values, dtype=np.float64).ravel()
    if values.size == 0:
        return None
    lower = (
        float(values.min())
        if lower_bound_percentile is None
        else float(np.quantile(values, lower_bound_percentile))
    )
    upper_source = values[values != 0] if ignore_zeros else values
    if upper_bound_percentile is None or upper_source.size == 0:
        upper = float(values.max())
    else:
        upper = float(np.quantile(upper_source, upper_bound_percentile))
    return WinsorizationBounds(lower=lower, upper=upper)


def clamp(values: npt.ArrayLike, bounds: WinsorizationBounds | None) -> FloatArray:
    """`least(greatest(lower, v), upper)` per value, in upstream's order (upper wins if crossed)."""
    arr = np.asarray(values, dtype=np.float64)
    if bounds is None:
        return arr.copy()
    return np.minimum(np.maximum(arr, bounds.lower), bounds.upper)


def winsorize(
    values_by_variant: Mapping[str, npt.ArrayLike],
    lower_bound_percentile: float | None = None,
    upper_bound_percentile: float | None = None,
    *,
    ignore_zeros: bool = False,
) -> dict[str, FloatArray]:
    """Winsorize every variant's per-entity values with bounds pooled across all variants."""
    arrays = {key: np.asarray(v, dtype=np.float64).ravel() for key, v in values_by_variant.items()}
    pooled = np.concatenate(list(arrays.values())) if arrays else np.empty(0)
    bounds = winsorization_bounds(
        pooled, lower_bound_percentile, upper_bound_percentile, ignore_zeros=ignore_zeros
    )
    return {key: clamp(arr, bounds) for key, arr in arrays.items()}
