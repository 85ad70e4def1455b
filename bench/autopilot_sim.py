"""Autopilot simulation: what the decision rules do over 28 daily evaluations, next to a
daily-peeked fixed-horizon rule.

    .venv/bin/python bench/autopilot_sim.py [--runs 1000] [--days 28] [--users 2000] [--seed 16]

For 2 and for 4 variants, `runs` simulated experiments per scenario, each gaining `users` new users
per arm per day. Metrics are conversions (a mean metric of 0/1 per user): the win metric converts
at 10%, the guardrail metric at 20%. Each day, from day `min_days` (7, the rule's default), the
autopilot's own decision function (`domain.autopilot.decide`: always-valid sequential comparisons,
Holm across test variants, guardrails first) is called on the cumulative sufficient statistics:

- A/A: no true effect anywhere — the share of runs the autopilot ever ships (must be ≤ alpha);
- lift: one test variant converts 5% better (relative) — the share shipped, and the median day;
- harm: one test variant's guardrail metric is 5% worse — the share that trips the guardrail
  (pause), and the median day.

The fixed-horizon rule beside it looks at the same sums every day with a plain two-sided z-test
at alpha (no sequential bound, no correction): ship when a variant is significantly better,
trip when one is significantly worse. Seeded: the figures repeat; they are estimates
(±1.96·sqrt(p(1-p)/runs)), not timings.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy.stats import norm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain.autopilot.decide import Inputs, MetricData, decide  # noqa: E402
from domain.autopilot.rules import parse_rules  # noqa: E402
from domain.stats import VariantStats  # noqa: E402

ALPHA = 0.05
WIN, GUARD = "win", "guard"
WIN_RATE, GUARD_RATE, EFFECT = 0.10, 0.20, 0.05
RULES = parse_rules(
    {
        "stop_when_significant": {"metric": WIN, "min_days": 7, "action": "ship_winner"},
        "guardrails": [{"metric": GUARD, "max_regression": 0.0, "action": "pause"}],
    }
)


@dataclass(frozen=True)
class Scenario:
    name: str
    win_lift: float  # relative, on the first test variant
    guard_change: float


SCENARIOS = (
    Scenario("A/A", 0.0, 0.0),
    Scenario("+5% lift", EFFECT, 0.0),
    Scenario("-5% guardrail", 0.0, -EFFECT),
)


def cumulative(rng: np.random.Generator, runs: int, days: int, users: int, rates: np.ndarray) -> np.ndarray:
    """Cumulative conversions [run, arm, day] for per-arm rates."""
    daily = rng.binomial(users, np.broadcast_to(rates[None, :, None], (runs, rates.size, days)))
    return np.cumsum(daily, axis=2)


def stats(keys: list[str], n: int, conversions: np.ndarray) -> list[VariantStats]:
    return [VariantStats(key, n, float(c), float(c)) for key, c in zip(keys, conversions, strict=True)]


def autopilot_day(keys: list[str], n: int, win: np.ndarray, guard: np.ndarray, day: int) -> str:
    """What the autopilot does on `day` (1-based): none | ship_variant | pause."""
    decision = decide(
        Inputs(
            rules=RULES,
            metrics={
                WIN: MetricData(WIN, "mean", "increase", stats(keys, n, win)),
                GUARD: MetricData(GUARD, "mean", "increase", stats(keys, n, guard)),
            },
            stop_metric=WIN,
            days_running=float(day),
            srm_p_value=1.0,
            srm_mismatch=False,
            alpha=ALPHA,
            tuning_parameter=5000.0,
            now=datetime.now(UTC),
            version=0,
        )
    )
    return decision.action


def fixed_horizon_day(n: int, win: np.ndarray, guard: np.ndarray) -> str:
    """A plain z-test at alpha on each test arm, peeked at: trip on harm first, then ship."""
    z_crit = norm.ppf(1 - ALPHA / 2)

    def z(conversions: np.ndarray) -> np.ndarray:
        p = conversions / n
        se = np.sqrt(p[0] * (1 - p[0]) / n + p[1:] * (1 - p[1:]) / n)
        return np.where(se > 0, (p[1:] - p[0]) / np.where(se > 0, se, 1), 0.0)

    if (z(guard) < -z_crit).any():
        return "pause"
    return "ship_variant" if (z(win) > z_crit).any() else "none"


def simulate(scenario: Scenario, arms: int, args: argparse.Namespace) -> dict[str, list[tuple[int, str]]]:
    """Per rule and run, the first action taken (day, action); an action ends the experiment."""
    rng = np.random.default_rng(args.seed + arms)
    win_rates = np.full(arms, WIN_RATE)
    guard_rates = np.full(arms, GUARD_RATE)
    win_rates[1] *= 1 + scenario.win_lift
    guard_rates[1] *= 1 + scenario.guard_change
    win = cumulative(rng, args.runs, args.days, args.users, win_rates)
    guard = cumulative(rng, args.runs, args.days, args.users, guard_rates)
    keys = ["control", *(f"test-{i}" for i in range(1, arms))]
    outcome: dict[str, list[tuple[int, str]]] = {"autopilot": [], "fixed": []}
    for run in range(args.runs):
        first: dict[str, tuple[int, str]] = {}
        for day in range(7, args.days + 1):
            n = args.users * day
            w, g = win[run, :, day - 1], guard[run, :, day - 1]
            if "autopilot" not in first and (action := autopilot_day(keys, n, w, g, day)) != "none":
                first["autopilot"] = (day, action)
            if "fixed" not in first and (action := fixed_horizon_day(n, w, g)) != "none":
                first["fixed"] = (day, action)
            if len(first) == 2:
                break
        for rule in outcome:
            outcome[rule].append(first.get(rule, (0, "none")))
    return outcome


def _share(outcomes: list[tuple[int, str]], action: str) -> tuple[float, float | None]:
    days = [day for day, taken in outcomes if taken == action]
    return len(days) / len(outcomes), (float(np.median(days)) if days else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--users", type=int, default=2000, help="new users per arm per day")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    print(f"{args.runs} runs x {args.days} days, {args.users} users/arm/day, alpha {ALPHA}, rules from day 7")
    print("share of runs whose first action is the one named, and the median day it came")
    print(
        f"{'scenario':<15}{'arms':>5}{'action':>14}  {'autopilot':>10}{'day':>6}  {'fixed, peeked':>14}{'day':>6}"
    )
    started = time.perf_counter()
    for arms in (2, 4):
        for scenario in SCENARIOS:
            result = simulate(scenario, arms, args)
            for action in ("ship_variant", "pause"):
                a_share, a_day = _share(result["autopilot"], action)
                f_share, f_day = _share(result["fixed"], action)
                print(
                    f"{scenario.name:<15}{arms:>5}{action:>14}  {a_share:>10.3f}{_day(a_day):>6}  "
                    f"{f_share:>14.3f}{_day(f_day):>6}"
                )
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


def _day(day: float | None) -> str:
    return "-" if day is None else f"{day:g}"


if __name__ == "__main__":
    sys.exit(main())
