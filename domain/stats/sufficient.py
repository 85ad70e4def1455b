"""Per-variant sufficient statistics (stats.md §1.3), built from per-entity values.

Every statistic in the engine is a function of these sums, which is what lets the result be
recomputed from stored rows, merged across breakdowns, or accumulated day by day without the raw
per-entity data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Order of the base fields in PostHog's `ExperimentStatsBase*` models; kept so the JSON we emit
# reads the same as upstream's when diffed.
_OPTIONAL_FIELDS = (
    "step_counts",
    "denominator_sum",
    "denominator_sum_squares",
    "numerator_denominator_sum_product",
    "covariate_sum",
    "covariate_sum_squares",
    "covariate_sum_product",
)


@dataclass(frozen=True)
class VariantStats:
    """One variant's sufficient statistics, named exactly as in PostHog's result JSON."""

    key: str
    number_of_samples: int
    sum: float
    sum_squares: float
    step_counts: tuple[int, ...] | None = None
    denominator_sum: float | None = None
    denominator_sum_squares: float | None = None
    numerator_denominator_sum_product: float | None = None
    covariate_sum: float | None = None
    covariate_sum_squares: float | None = None
    covariate_sum_product: float | None = None

    def __post_init__(self) -> None:
        if self.number_of_samples < 0:
            raise ValueError("number_of_samples cannot be negative")

    @property
    def is_ratio(self) -> bool:
        """True when the ratio extras are present (ratio and retention metrics)."""
        return self.denominator_sum is not None

    def to_dict(self) -> dict[str, Any]:
        """The `ExperimentStatsBase` fields, absent optional ones as null (pydantic dump style)."""
        out: dict[str, Any] = {
            "key": self.key,
            "number_of_samples": int(self.number_of_samples),
            "sum": float(self.sum),
            "sum_squares": float(self.sum_squares),
        }
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if name == "step_counts":
                out[name] = None if value is None else [int(v) for v in value]
            else:
                out[name] = None if value is None else float(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VariantStats:
        """Inverse of `to_dict`; ignores statistical and unknown keys (e.g. a stored result row)."""
        steps = data.get("step_counts")
        optional = {name: data.get(name) for name in _OPTIONAL_FIELDS if name != "step_counts"}
        return cls(
            key=str(data["key"]),
            number_of_samples=int(data["number_of_samples"]),
            sum=float(data["sum"]),
            sum_squares=float(data["sum_squares"]),
            step_counts=None if steps is None else tuple(int(s) for s in steps),
            **{k: None if v is None else float(v) for k, v in optional.items()},
        )


def _as_values(values: npt.ArrayLike, name: str) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of per-entity values")
    # NaN would silently poison every sum; upstream coalesces missing values to 0 in SQL, so the
    # caller must do the same before handing values over.
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


CovariateSums = tuple[float | None, float | None, float | None]


def _covariate_sums(values: FloatArray, covariate: npt.ArrayLike | None) -> CovariateSums:
    """CUPED's extra sums, Σx, Σx² and Σy·x, when a per-entity covariate is given."""
    if covariate is None:
        return None, None, None
    x = _as_values(covariate, "covariate")
    if x.shape != values.shape:
        raise ValueError("covariate must have one value per entity")
    return float(x.sum()), float(np.dot(x, x)), float(np.dot(values, x))


def mean_variant_stats(
    key: str, values: npt.ArrayLike, covariate: npt.ArrayLike | None = None
) -> VariantStats:
    """Mean metric: `values` holds each exposed entity's total (0 for entities without events).

    `sum_squares` squares each entity's total, never per-event or per-day values (stats.md §10,
    pitfall 1). `covariate`, when given, is each entity's pre-exposure value for CUPED.
    """
    arr = _as_values(values, "values")
    x_sum, x_squares, xy_sum = _covariate_sums(arr, covariate)
    return VariantStats(
        key=key,
        number_of_samples=int(arr.size),
        sum=float(arr.sum()),
        sum_squares=float(np.dot(arr, arr)),
        covariate_sum=x_sum,
        covariate_sum_squares=x_squares,
        covariate_sum_product=xy_sum,
    )


def funnel_variant_stats(
    key: str,
    converted: npt.ArrayLike,
    step_counts: Sequence[int] | None = None,
    covariate: npt.ArrayLike | None = None,
) -> VariantStats:
    """Funnel metric: `converted` is 0/1 per exposed entity; `sum_squares` equals `sum`."""
    arr = _as_values(converted, "converted")
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError("converted must contain only 0 and 1")
    total = float(arr.sum())
    x_sum, x_squares, xy_sum = _covariate_sums(arr, covariate)
    return VariantStats(
        key=key,
        number_of_samples=int(arr.size),
        sum=total,
        sum_squares=total,
        step_counts=None if step_counts is None else tuple(int(s) for s in step_counts),
        covariate_sum=x_sum,
        covariate_sum_squares=x_squares,
        covariate_sum_product=xy_sum,
    )


def ratio_variant_stats(key: str, numerator: npt.ArrayLike, denominator: npt.ArrayLike) -> VariantStats:
    """Ratio / retention metric: per-entity numerator and denominator, aligned by entity.

    Both are aggregated per entity before being paired (upstream joins the two separately
    aggregated sides), so the cross product is Σ m_u·d_u over entities.
    """
    m = _as_values(numerator, "numerator")
    d = _as_values(denominator, "denominator")
    if m.shape != d.shape:
        raise ValueError("numerator and denominator must have one value per entity each")
    return VariantStats(
        key=key,
        number_of_samples=int(m.size),
        sum=float(m.sum()),
        sum_squares=float(np.dot(m, m)),
        denominator_sum=float(d.sum()),
        denominator_sum_squares=float(np.dot(d, d)),
        numerator_denominator_sum_product=float(np.dot(m, d)),
    )


def zero_variant_stats(key: str, *, ratio: bool = False, steps: int | None = None) -> VariantStats:
    """A variant nobody was exposed to; upstream adds these so every flag variant is reported."""
    return VariantStats(
        key=key,
        number_of_samples=0,
        sum=0.0,
        sum_squares=0.0,
        step_counts=None if steps is None else (0,) * steps,
        denominator_sum=0.0 if ratio else None,
        denominator_sum_squares=0.0 if ratio else None,
        numerator_denominator_sum_product=0.0 if ratio else None,
    )
