"""Reading an experiment's `stats_config` the way upstream result assembly does.

Bad values never fail the analysis: each falls back to its default, as upstream's
`_validate_numeric_range` / `_parse_enum_config` do. Writes are stricter: `check_stats_options`
refuses the settings Flagship adds (sequential testing, CUPED, multiple-comparison correction)
when they are malformed, so a typo is a 400 instead of a silent default.

Keys beyond PostHog's `{method, bayesian, frequentist, baseline_variant_key}`:

- `frequentist.sequential_testing_enabled` (bool) and `frequentist.sequential_tuning_parameter`
  (1…1e9, default 5000): PostHog's names;
- `cuped.enabled` (bool) and `cuped.lookback_days` (1…30, default 14): PostHog's names;
- `multiple_comparison_correction`: `none` (default) | `holm` | `benjamini_hochberg` (Flagship's).

Sequential testing and corrections only apply to the frequentist engine; CUPED to both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.errors import ValidationFailed
from domain.stats.effects import DifferenceType

DEFAULT_BASELINE_KEY = "control"
DEFAULT_CI_LEVEL = 0.95
DEFAULT_ALPHA = 0.05
DEFAULT_TUNING_PARAMETER = 5000.0
TUNING_PARAMETER_RANGE = (1.0, 1e9)  # upstream's accepted range; outside it the default applies
DEFAULT_CUPED_LOOKBACK_DAYS = 14
CUPED_LOOKBACK_RANGE = (1, 30)


class StatsMethod(StrEnum):
    BAYESIAN = "bayesian"
    FREQUENTIST = "frequentist"


class Correction(StrEnum):
    """Multiple-comparison correction over a metric's test variants (frequentist only)."""

    NONE = "none"
    HOLM = "holm"  # Holm-Bonferroni: family-wise error rate
    BENJAMINI_HOCHBERG = "benjamini_hochberg"  # false discovery rate


@dataclass(frozen=True)
class StatsConfig:
    """The resolved settings one analysis runs with.

    `sequential` and `correction` are already resolved against the method: a Bayesian config
    never carries them, whatever the stored JSON says.
    """

    method: StatsMethod = StatsMethod.BAYESIAN
    ci_level: float = DEFAULT_CI_LEVEL
    alpha: float = DEFAULT_ALPHA
    difference_type: DifferenceType = DifferenceType.RELATIVE
    baseline_variant_key: str = DEFAULT_BASELINE_KEY
    sequential: bool = False
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER
    correction: Correction = Correction.NONE
    cuped: bool = False
    cuped_lookback_days: int = DEFAULT_CUPED_LOOKBACK_DAYS


def _probability(value: Any, default: float) -> float:
    """A level strictly inside (0, 1), else `default`.

    Upstream accepts the closed range [0, 1] here and then raises on 0 or 1 when building the
    test config, which fails the whole query; falling back instead keeps the endpoint answering.
    Booleans are refused because `float(True)` would read as 1.
    """
    number = _number(value)
    return number if number is not None and 0 < number < 1 else default


def _number(value: Any) -> float | None:
    """A finite number (numeric strings included, as upstream's `float(value)`), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _tuning_parameter(value: Any) -> float:
    number = _number(value)
    low, high = TUNING_PARAMETER_RANGE
    return number if number is not None and low <= number <= high else DEFAULT_TUNING_PARAMETER


def _lookback_days(value: Any) -> int:
    """Upstream's `_parse_lookback_days`: `int(value)` clamped into 1…30, else the default."""
    number = _number(value)
    if number is None:
        return DEFAULT_CUPED_LOOKBACK_DAYS
    low, high = CUPED_LOOKBACK_RANGE
    return min(max(int(number), low), high)


def _difference_type(value: Any) -> DifferenceType:
    """Upstream looks the *enum name* up (`"ABSOLUTE"`); anything else, even `"absolute"`, is relative.

    Kept name-only so the same stored config gives the same numbers here and in PostHog.
    """
    if isinstance(value, DifferenceType):
        return value
    if isinstance(value, str) and value in DifferenceType.__members__:
        return DifferenceType[value]
    return DifferenceType.RELATIVE


def _section(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    section = raw.get(name)
    return section if isinstance(section, Mapping) else {}


def _correction(value: Any) -> Correction:
    return Correction(value) if value in tuple(Correction) else Correction.NONE


def parse_stats_config(raw: Mapping[str, Any] | None) -> StatsConfig:
    """`{method, bayesian: {ci_level, difference_type}, frequentist: {alpha, difference_type,
    sequential_…}, cuped: {enabled, lookback_days}, multiple_comparison_correction,
    baseline_variant_key}` → `StatsConfig`; `None` or `{}` gives the defaults."""
    raw = raw or {}
    method_value = raw.get("method")
    method = StatsMethod(method_value) if method_value in tuple(StatsMethod) else StatsMethod.BAYESIAN
    bayesian, frequentist = _section(raw, "bayesian"), _section(raw, "frequentist")
    cuped = _section(raw, "cuped")
    chosen = bayesian if method is StatsMethod.BAYESIAN else frequentist
    baseline = raw.get("baseline_variant_key")
    is_frequentist = method is StatsMethod.FREQUENTIST
    return StatsConfig(
        method=method,
        ci_level=_probability(bayesian.get("ci_level", DEFAULT_CI_LEVEL), DEFAULT_CI_LEVEL),
        alpha=_probability(frequentist.get("alpha", DEFAULT_ALPHA), DEFAULT_ALPHA),
        difference_type=_difference_type(chosen.get("difference_type")),
        baseline_variant_key=baseline if isinstance(baseline, str) and baseline else DEFAULT_BASELINE_KEY,
        sequential=is_frequentist and frequentist.get("sequential_testing_enabled") is True,
        sequential_tuning_parameter=_tuning_parameter(
            frequentist.get("sequential_tuning_parameter", DEFAULT_TUNING_PARAMETER)
        ),
        correction=_correction(raw.get("multiple_comparison_correction"))
        if is_frequentist
        else Correction.NONE,
        cuped=cuped.get("enabled") is True,
        cuped_lookback_days=_lookback_days(cuped.get("lookback_days", DEFAULT_CUPED_LOOKBACK_DAYS)),
    )


def fingerprint_options(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings beyond PostHog's that change results, only where they differ from the defaults.

    Empty for default settings, so PostHog's fingerprint recipe is untouched there; otherwise the
    fingerprint joins these, and toggling any of them makes a new series (ARCHITECTURE.md).
    """
    config = parse_stats_config(raw)
    options: dict[str, Any] = {}
    if config.sequential:
        options["sequential_tuning_parameter"] = config.sequential_tuning_parameter
    if config.correction is not Correction.NONE:
        options["multiple_comparison_correction"] = config.correction.value
    if config.cuped:
        options["cuped_lookback_days"] = config.cuped_lookback_days
    return options


def _invalid(name: str, value: Any, must: str) -> ValidationFailed:
    shown = value if isinstance(value, str) else repr(value)
    return ValidationFailed(f"Invalid {name}: '{shown}'. {must}", attr="stats_config")


def _check_bool(section: Mapping[str, Any], key: str, name: str) -> None:
    if key in section and not isinstance(section[key], bool):
        raise _invalid(name, section[key], "Must be true or false")


def _check_range(value: Any, name: str, bounds: tuple[float, float], *, integer: bool = False) -> None:
    number = _number(value)
    whole = number is not None and (not integer or number == int(number))
    if number is None or not whole or not bounds[0] <= number <= bounds[1]:
        kind = "an integer" if integer else "a number"
        raise _invalid(name, value, f"Must be {kind} between {bounds[0]:g} and {bounds[1]:.0f}")


def _check_cuped(raw: Mapping[str, Any]) -> None:
    cuped = raw.get("cuped")
    if cuped is None:
        return
    if not isinstance(cuped, Mapping):
        raise _invalid("cuped", cuped, "Must be an object like {'enabled': true, 'lookback_days': 14}")
    _check_bool(cuped, "enabled", "cuped.enabled")
    if cuped.get("lookback_days") is not None:
        _check_range(cuped["lookback_days"], "cuped.lookback_days", CUPED_LOOKBACK_RANGE, integer=True)


def check_stats_options(raw: Mapping[str, Any] | None) -> None:
    """Refuse malformed Flagship settings (ValidationFailed, attr `stats_config`); None is fine."""
    if not raw:
        return
    frequentist = _section(raw, "frequentist")
    _check_bool(frequentist, "sequential_testing_enabled", "sequential_testing_enabled")
    if frequentist.get("sequential_tuning_parameter") is not None:
        value = frequentist["sequential_tuning_parameter"]
        _check_range(value, "sequential_tuning_parameter", TUNING_PARAMETER_RANGE)
    correction = raw.get("multiple_comparison_correction")
    if correction is not None and correction not in tuple(Correction):
        choices = ", ".join(sorted(c.value for c in Correction))
        raise _invalid("multiple_comparison_correction", correction, f"Must be one of: {choices}")
    _check_cuped(raw)
