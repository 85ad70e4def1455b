"""Pure experiment statistics, reproducing PostHog's engine (shared/reference/stats.md).

Flow: per-entity values → `VariantStats` (sufficient statistics) → `compute_experiment_result`
(gates, then each test variant against the baseline with the Bayesian or frequentist engine) →
PostHog's result JSON. No I/O here; numpy/scipy only.
"""

from domain.stats.bayesian import BayesianResult, GaussianPrior, bayesian_test
from domain.stats.config import StatsConfig, StatsMethod, parse_stats_config
from domain.stats.effects import DifferenceType, Effect, absolute_effect, effect_size, relative_effect
from domain.stats.errors import ExperimentDataError, StatisticError
from domain.stats.frequentist import FrequentistResult, welch_satterthwaite_df, welch_t_test
from domain.stats.results import (
    add_missing_variants,
    compare_variants,
    compute_experiment_result,
    run_test,
    split_baseline,
)
from domain.stats.statistics import (
    MetricType,
    ProportionStatistic,
    RatioStatistic,
    SampleMeanStatistic,
    Statistic,
    ratio_variance,
    statistic_for,
)
from domain.stats.sufficient import (
    VariantStats,
    funnel_variant_stats,
    mean_variant_stats,
    ratio_variant_stats,
    zero_variant_stats,
)
from domain.stats.validation import ValidationFailure, validate_variant
from domain.stats.winsorize import WinsorizationBounds, clamp, winsorization_bounds, winsorize

__all__ = [
    "BayesianResult",
    "DifferenceType",
    "Effect",
    "ExperimentDataError",
    "FrequentistResult",
    "GaussianPrior",
    "MetricType",
    "ProportionStatistic",
    "RatioStatistic",
    "SampleMeanStatistic",
    "Statistic",
    "StatisticError",
    "StatsConfig",
    "StatsMethod",
    "ValidationFailure",
    "VariantStats",
    "WinsorizationBounds",
    "absolute_effect",
    "add_missing_variants",
    "bayesian_test",
    "clamp",
    "compare_variants",
    "compute_experiment_result",
    "effect_size",
    "funnel_variant_stats",
    "mean_variant_stats",
    "parse_stats_config",
    "ratio_variance",
    "ratio_variant_stats",
    "relative_effect",
    "run_test",
    "split_baseline",
    "statistic_for",
    "validate_variant",
    "welch_satterthwaite_df",
    "welch_t_test",
    "winsorization_bounds",
    "winsorize",
    "zero_variant_stats",
]
