"""Peeking benchmark: what daily looks do to each analysis, with no effect and with a true +5% lift.

    .venv/bin/python bench/stats_peeking.py [--runs 2000] [--days 14] [--users 200] [--seed 15]

Simulates `runs` experiments per scenario, each gaining `users` new users per arm per day for
`days` days. A user brings a pre-exposure value x (the metric over the 14 days before exposure,
revenue-like: Gamma(2, 10)) and a post-exposure value y = 0.8·x + Gamma(1, 15) noise, so x and y
correlate at about 0.6 (CUPED can remove about a third of the variance); under the lift the test
arm's y is 5% higher. Each user's y is fixed at exposure, a simplification that keeps the
simulation at the level of sufficient statistics: per run, arm and day the cumulative n, Σy, Σy²,
Σx, Σx², Σxy, vectorised over all runs.

Every look is a full `compute_experiment_result` on those sums (mean metric, relative lift, alpha
0.05 unless noted), the code the results query and the daily timeseries run, with these settings:

- fixed horizon: PostHog's frequentist Welch t-test, looked at every day;
- sequential: the always-valid confidence sequence (tuning parameter 5000);
- sequential + CUPED, on the relative scale: PostHog's relative CUPED variance, which
  under-counts the control's share of the variance when θ·x̄ is a large part of ȳ (ARCHITECTURE.md,
  "Statistics"); and the same on the absolute scale, whose variance is gbstats' exactly.

Printed per scenario and setting: the share of runs ever significant over the days (A/A: the
false-positive rate under daily peeking), the share significant on the last day (with the lift:
power at day `days`), and the median day of first significance among the runs that got there.
Seeded, so the figures repeat; they are statistical estimates (±1.96·sqrt(p(1-p)/runs)), not timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.stats import (  # noqa: E402
    DifferenceType,
    StatsConfig,
    StatsMethod,
    VariantStats,
    compute_experiment_result,
)

ALPHA = 0.05
LIFT = 0.05
FREQUENTIST = StatsConfig(method=StatsMethod.FREQUENTIST, alpha=ALPHA)
SETTINGS = {
    "fixed horizon": FREQUENTIST,
    "sequential": replace(FREQUENTIST, sequential=True),
    "sequential + CUPED": replace(FREQUENTIST, sequential=True, cuped=True),
    "seq. + CUPED, abs.": replace(
        FREQUENTIST, sequential=True, cuped=True, difference_type=DifferenceType.ABSOLUTE
    ),
}
FIELDS = ("n", "y", "yy", "x", "xx", "xy")


@dataclass(frozen=True)
class Outcome:
    ever: float
    last_day: float
    median_first_day: float | None


def simulate(
    rng: np.random.Generator, runs: int, days: int, users: int, lift: float
) -> dict[str, np.ndarray]:
    """Cumulative sums per [run, arm, day] (arm 0 = control, 1 = test)."""
    daily = {name: np.zeros((runs, 2, days)) for name in FIELDS}
    for day in range(days):
        x = rng.gamma(2.0, 10.0, size=(runs, 2, users))
        y = 0.8 * x + rng.gamma(1.0, 15.0, size=(runs, 2, users))
        y[:, 1, :] *= 1 + lift
        sums = {"n": np.full((runs, 2), float(users)), "y": y.sum(2), "yy": (y * y).sum(2)}
        sums |= {"x": x.sum(2), "xx": (x * x).sum(2), "xy": (x * y).sum(2)}
        for name in FIELDS:
            daily[name][:, :, day] = sums[name]
    return {name: np.cumsum(values, axis=2) for name, values in daily.items()}


def variants(sums: dict[str, np.ndarray], run: int, day: int) -> list[VariantStats]:
    def arm(key: str, i: int) -> VariantStats:
        value = {name: float(sums[name][run, i, day]) for name in FIELDS}
        return VariantStats(
            key,
            int(value["n"]),
            value["y"],
            value["yy"],
            covariate_sum=value["x"],
            covariate_sum_squares=value["xx"],
            covariate_sum_product=value["xy"],
        )

    return [arm("control", 0), arm("test", 1)]


def evaluate(sums: dict[str, np.ndarray], config: StatsConfig, runs: int, days: int) -> Outcome:
    first_days: list[int] = []
    significant_last = 0
    for run in range(runs):
        first = None
        for day in range(days):
            [row] = compute_experiment_result("mean", variants(sums, run, day), config)["variant_results"]
            if row["significant"] and first is None:
                first = day + 1
            if day == days - 1 and row["significant"]:
                significant_last += 1
        if first is not None:
            first_days.append(first)
    median = float(np.median(first_days)) if first_days else None
    return Outcome(len(first_days) / runs, significant_last / runs, median)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--users", type=int, default=200, help="new users per arm per day")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    began = time.perf_counter()
    print(
        f"{args.runs} runs x {args.days} daily looks, {args.users} new users per arm per day, alpha {ALPHA}"
    )
    for scenario, lift in (("A/A (no effect)", 0.0), (f"true +{LIFT:.0%} lift", LIFT)):
        sums = simulate(np.random.default_rng(args.seed), args.runs, args.days, args.users, lift)
        print(f"\n{scenario}")
        print(
            f"  {'analysis':<20} {'ever significant':>17} {'significant day ' + str(args.days):>20} {'median first day':>17}"
        )
        for name, config in SETTINGS.items():
            out = evaluate(sums, config, args.runs, args.days)
            median = "-" if out.median_first_day is None else f"{out.median_first_day:g}"
            print(f"  {name:<20} {out.ever:>17.2%} {out.last_day:>20.2%} {median:>17}")
    print(f"\n({time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
