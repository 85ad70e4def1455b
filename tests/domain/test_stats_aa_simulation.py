"""A/A simulations: with no true effect the frequentist engine must flag about alpha of experiments.

Seeded, so the figures are fixed; the bands are still chosen as ±3 binomial standard errors
around the target (2,000 runs: SE ≈ 0.49 points at 5%), so a correct engine passes for any seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest

from domain.stats import VariantStats, compute_experiment_result

RUNS = 2000
N = 1000  # exposures per arm


def band(rate: float, runs: int = RUNS) -> tuple[float, float]:
    se = math.sqrt(rate * (1 - rate) / runs)
    return rate - 3 * se, rate + 3 * se


def mean_rows(control: np.ndarray, test: np.ndarray) -> list[VariantStats]:
    return [
        VariantStats("control", control.size, float(control.sum()), float(control @ control)),
        VariantStats("test", test.size, float(test.sum()), float(test @ test)),
    ]


def revenue(rng: np.random.Generator) -> np.ndarray:
    """Skewed per-user revenue: 70% zero, the rest exponential; the hard case for a t-test."""
    spend = rng.exponential(20.0, (RUNS, 2, N))
    return np.where(rng.random((RUNS, 2, N)) < 0.7, 0.0, spend)


def flag_rate(
    data: np.ndarray, metric_type: str, config: Mapping[str, Any], rows: Callable[..., list[VariantStats]]
) -> tuple[float, np.ndarray]:
    """Share of runs flagged significant, and the per-run p-values or chances to win."""
    flags, scores = 0, []
    for run in data:
        [row] = compute_experiment_result(metric_type, rows(run[0], run[1]), config)["variant_results"]
        assert row["significant"] is not None
        flags += bool(row["significant"])
        scores.append(row.get("p_value", row.get("chance_to_win")))
    return flags / len(data), np.asarray(scores, dtype=np.float64)


def funnel_rows(control: np.ndarray, test: np.ndarray) -> list[VariantStats]:
    c, t = float(control.sum()), float(test.sum())
    return [VariantStats("control", control.size, c, c), VariantStats("test", test.size, t, t)]


@pytest.mark.parametrize("difference_type", ["RELATIVE", "ABSOLUTE"])
def test_frequentist_false_positive_rate_on_skewed_revenue(difference_type: str) -> None:
    data = revenue(np.random.default_rng(20240601))
    config = {"method": "frequentist", "frequentist": {"difference_type": difference_type}}
    rate, p_values = flag_rate(data, "mean", config, mean_rows)
    low, high = band(0.05)
    assert low <= rate <= high, rate
    # Beyond the 5% line, p-values under the null should be roughly uniform.
    assert abs(float(np.mean(p_values < 0.5)) - 0.5) < 3 * math.sqrt(0.25 / RUNS)


def test_frequentist_false_positive_rate_on_a_funnel() -> None:
    data = (np.random.default_rng(7).random((RUNS, 2, N)) < 0.10).astype(np.float64)
    rate, _ = flag_rate(data, "funnel", {"method": "frequentist"}, funnel_rows)
    low, high = band(0.05)
    assert low <= rate <= high, rate


def test_alpha_setting_moves_the_false_positive_rate() -> None:
    data = revenue(np.random.default_rng(99))[:1000]
    rate, _ = flag_rate(data, "mean", {"method": "frequentist", "frequentist": {"alpha": 0.2}}, mean_rows)
    low, high = band(0.20, runs=1000)
    assert low <= rate <= high, rate


def test_bayesian_flag_rate_is_about_twice_one_minus_ci_level() -> None:
    # Upstream's two one-sided rule (CTW > 0.95 or < 0.05) fires ≈ 10% of the time on A/A data;
    # kept for compatibility, and pinned here so nobody "fixes" one engine without the other.
    data = revenue(np.random.default_rng(20240601))
    rate, chances = flag_rate(data, "mean", {"method": "bayesian"}, mean_rows)
    low, high = band(0.10)
    assert low <= rate <= high, rate
    assert abs(float(np.mean(chances > 0.5)) - 0.5) < 3 * math.sqrt(0.25 / RUNS)
