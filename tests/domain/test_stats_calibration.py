"""Calibration under peeking: 2,000 A/A experiments looked at every day for 14 days.

With sequential testing on, the share of experiments that are *ever* significant must stay within
alpha + 1 point; the fixed-horizon t-test peeked the same way is printed beside it (it is far
above alpha, which is the problem sequential testing solves). Each look is a full
`compute_experiment_result`, the code the API and the timeseries run; only the data generation is
vectorised: daily conversions per arm are binomial draws over all runs at once, accumulated into
the sufficient statistics a funnel result reads.
"""

from __future__ import annotations

import numpy as np
import pytest

from domain.stats import StatsConfig, StatsMethod, VariantStats, compute_experiment_result

RUNS = 2000
LOOKS = 14
USERS_PER_ARM_PER_DAY = 250
RATE = 0.10
ALPHA = 0.05


def cumulative_conversions(seed: int) -> np.ndarray:
    """[run, arm, day] conversions so far, both arms at the same true rate."""
    rng = np.random.default_rng(seed)
    daily = rng.binomial(USERS_PER_ARM_PER_DAY, RATE, size=(RUNS, 2, LOOKS))
    return np.cumsum(daily, axis=2)


def first_significant_look(conversions: np.ndarray, config: StatsConfig) -> list[int | None]:
    """Per run, the first day whose result is significant (None if never); stops at the first."""
    firsts: list[int | None] = []
    for run in conversions:
        first = None
        for day in range(LOOKS):
            n = USERS_PER_ARM_PER_DAY * (day + 1)
            control, test = float(run[0, day]), float(run[1, day])
            variants = [VariantStats("control", n, control, control), VariantStats("test", n, test, test)]
            [row] = compute_experiment_result("funnel", variants, config)["variant_results"]
            assert row["significant"] is not None
            if row["significant"]:
                first = day + 1
                break
        firsts.append(first)
    return firsts


@pytest.mark.slow
def test_sequential_testing_keeps_the_error_rate_under_daily_peeking() -> None:
    conversions = cumulative_conversions(seed=20260101)
    sequential = StatsConfig(method=StatsMethod.FREQUENTIST, alpha=ALPHA, sequential=True)
    fixed = StatsConfig(method=StatsMethod.FREQUENTIST, alpha=ALPHA)
    sequential_rate = np.mean([f is not None for f in first_significant_look(conversions, sequential)])
    fixed_rate = np.mean([f is not None for f in first_significant_look(conversions, fixed)])
    print(
        f"\nA/A, {RUNS} runs x {LOOKS} daily looks, alpha {ALPHA}: ever significant "
        f"sequential {sequential_rate:.2%}, fixed-horizon {fixed_rate:.2%}"
    )
    assert sequential_rate <= ALPHA + 0.01
    assert fixed_rate > 2 * ALPHA  # peeking a fixed-horizon test inflates its error rate
