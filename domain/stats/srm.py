"""Sample-ratio mismatch (stats.md §1.7): do exposures follow the split the flag asks for?

Pearson's chi-square goodness of fit of the exposures per analysed variant against the shares the
flag configures, with k - 1 degrees of freedom for the k keys that have a positive share. A
mismatch is p < 0.001, PostHog's health-check threshold: at that level a healthy experiment
raises a false alarm once in a thousand looks, while a broken assignment (bots, a redirect losing
one arm, a caching layer) usually shows up as p-values many orders of magnitude smaller.

The expected shares follow flag evaluation (domain/flag_evaluation.py): a holdout takes its
exclusion percentage of *everyone* first, with its own hash; the rest meet the release conditions
and are split by the variants' rollout percentages. Among the exposed, a holdout therefore
weighs h and variant k weighs (1 - h)·r·pₖ, where r is the share the release conditions admit.
r is known only when no condition group filters on properties (then it is the largest group
rollout, since every group buckets with the same hash); otherwise the holdout is left out of the
test and the variants are checked among themselves. Variants without a rollout share (and
excluded variants, which the analysis does not count) are left out, as upstream does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scipy.stats import chi2

from domain.flag_rules import flag_variants

SRM_P_VALUE_THRESHOLD = 0.001


def _percent(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return min(max(float(value), 0.0), 100.0)


def _release_share(filters: Mapping[str, Any]) -> float | None:
    """Share of users the release conditions admit, when no group depends on properties."""
    groups = [g for g in filters.get("groups") or [] if isinstance(g, Mapping)]
    if not groups or any(g.get("properties") for g in groups):
        return None
    return max(_percent(g.get("rollout_percentage"), 100.0) for g in groups) / 100


def _holdout(filters: Mapping[str, Any]) -> tuple[str, float] | None:
    holdout = filters.get("holdout")
    if not isinstance(holdout, Mapping) or holdout.get("id") is None:
        return None
    return f"holdout-{holdout['id']}", _percent(holdout.get("exclusion_percentage"), 0.0) / 100


def expected_split(filters: Mapping[str, Any] | None, keys: Sequence[str]) -> dict[str, float]:
    """Relative weight of each analysed key among exposures (only keys with a positive weight).

    Without flag filters (an analysis built by hand) the non-holdout keys weigh the same.
    """
    if filters is None:
        return {key: 1.0 for key in keys if not key.startswith("holdout-")}
    shares = {
        str(v["key"]): _percent(v.get("rollout_percentage"), 0.0) / 100
        for v in flag_variants(filters)
        if isinstance(v, Mapping) and "key" in v
    }
    holdout = _holdout(filters)
    held = holdout[1] if holdout is not None else 0.0
    release = _release_share(filters)
    admitted = 1.0 if release is None else release  # unknown: a common factor of the variants only
    weights = {key: (1 - held) * shares[key] * admitted for key in keys if key in shares}
    if holdout is not None and holdout[0] in keys and release is not None:
        weights[holdout[0]] = held
    return {key: weights[key] for key in keys if weights.get(key, 0.0) > 0}


def sample_ratio_mismatch(observed: Mapping[str, int], weights: Mapping[str, float]) -> dict[str, Any]:
    """`{p_value, chi_square, mismatch, expected, observed}` for the keys of `weights`.

    With no exposures yet, or fewer than two keys to compare, there is nothing to test: the
    statistic is 0 and the p-value 1.
    """
    counts = {key: int(observed.get(key, 0)) for key in weights}
    total, weight = sum(counts.values()), sum(weights.values())
    expected = {key: (weights[key] / weight) * total if weight > 0 else 0.0 for key in weights}
    chi_square, p_value = 0.0, 1.0
    if total > 0 and len(weights) >= 2:
        chi_square = sum((counts[key] - expected[key]) ** 2 / expected[key] for key in weights)
        p_value = float(chi2.sf(chi_square, len(weights) - 1))
    return {
        "p_value": p_value,
        "chi_square": float(chi_square),
        "mismatch": p_value < SRM_P_VALUE_THRESHOLD,
        "expected": expected,
        "observed": counts,
    }
