"""Reading an experiment's `stats_config` the way upstream result assembly does.

Bad values never fail the analysis: each falls back to its default, as upstream's
`_validate_numeric_range` / `_parse_enum_config` do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.stats.effects import DifferenceType

DEFAULT_BASELINE_KEY = "control"
DEFAULT_CI_LEVEL = 0.95
DEFAULT_ALPHA = 0.05


class StatsMethod(StrEnum):
    BAYESIAN = "bayesian"
    FREQUENTIST = "frequentist"


@dataclass(frozen=True)
class StatsConfig:
    """The resolved settings one analysis runs with."""

    method: StatsMethod = StatsMethod.BAYESIAN
    ci_level: float = DEFAULT_CI_LEVEL
    alpha: float = DEFAULT_ALPHA
    difference_type: DifferenceType = DifferenceType.RELATIVE
    baseline_variant_key: str = DEFAULT_BASELINE_KEY


def _probability(value: Any, default: float) -> float:
    """A level strictly inside (0, 1), else `default`.

    Upstream accepts the closed range [0, 1] here and then raises on 0 or 1 when building the
    test config, which fails the whole query; falling back instead keeps the endpoint answering.
    Booleans are refused because `float(True)` would read as 1.
    """
    if isinstance(value, bool):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and 0 < number < 1 else default


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


def parse_stats_config(raw: Mapping[str, Any] | None) -> StatsConfig:
    """`{method, bayesian: {ci_level, difference_type}, frequentist: {alpha, difference_type},
    baseline_variant_key}` → `StatsConfig`; `None` or `{}` gives the defaults."""
    raw = raw or {}
    method_value = raw.get("method")
    method = StatsMethod(method_value) if method_value in tuple(StatsMethod) else StatsMethod.BAYESIAN
    bayesian, frequentist = _section(raw, "bayesian"), _section(raw, "frequentist")
    chosen = bayesian if method is StatsMethod.BAYESIAN else frequentist
    baseline = raw.get("baseline_variant_key")
    return StatsConfig(
        method=method,
        ci_level=_probability(bayesian.get("ci_level", DEFAULT_CI_LEVEL), DEFAULT_CI_LEVEL),
        alpha=_probability(frequentist.get("alpha", DEFAULT_ALPHA), DEFAULT_ALPHA),
        difference_type=_difference_type(chosen.get("difference_type")),
        baseline_variant_key=baseline if isinstance(baseline, str) and baseline else DEFAULT_BASELINE_KEY,
    )
