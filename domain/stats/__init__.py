"""Pure experiment statistics, reproducing PostHog's engine (shared/reference/stats.md).

Flow: per-entity values → `VariantStats` (sufficient statistics) → `compute_experiment_result`
(gates, then each test variant against the baseline with the Bayesian or frequentist engine,
fixed-horizon or sequential, CUPED-adjusted when asked, then the multiple-comparison correction) →
PostHog's result JSON. `sample_ratio_mismatch` checks the exposures; `sequential_relative_comparisons`
is the always-valid question an automatic stop asks. No I/O here; numpy/scipy only.
"""

from domain.stats.bayesian import BayesianResult, GaussianPrior, bayesian_test
from domain.stats.comparison import Comparison, ComparisonResult, compare, run_test
from domain.stats.config import (
    Correction,
    StatsConfig,
    StatsMethod,
    check_stats_options,
    fingerprint_options,
    parse_stats_config,
)
from domain.stats.corrections import adjusted_p_values, benjamini_hochberg_adjusted, holm_adjusted
from domain.stats.cuped import Covariate, CupedAdjustment, cuped_adjust
from domain.stats.decisions import SequentialComparison, Verdict, sequential_relative_comparisons
from domain.stats.effects import DifferenceType, Effect, absolute_effect, effect_size, relative_effect
from domain.stats.errors import ExperimentDataError, StatisticError
from domain.stats.frequentist import FrequentistResult, welch_satterthwaite_df, welch_t_test
from domain.stats.results import (
    Analysis,
    VariantAnalysis,
    add_missing_variants,
    analyse_variants,
    compare_variants,
    compute_experiment_result,
    split_baseline,
)
from domain.stats.sequential import (
    sequential_halfwidth,
    sequential_p_value,
    sequential_rho,
    sequential_t_test,
)
from domain.stats.srm import SRM_P_VALUE_THRESHOLD, expected_split, sample_ratio_mismatch
from domain.stats.statistics import (
    AdjustedStatistic,
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
    "SRM_P_VALUE_THRESHOLD",
    "AdjustedStatistic",
    "Analysis",
    "BayesianResult",
    "Comparison",
    "ComparisonResult",
    "Correction",
    "Covariate",
    "CupedAdjustment",
    "DifferenceType",
    "Effect",
    "ExperimentDataError",
    "FrequentistResult",
    "GaussianPrior",
    "MetricType",
    "ProportionStatistic",
    "RatioStatistic",
    "SampleMeanStatistic",
    "SequentialComparison",
    "Statistic",
    "StatisticError",
    "StatsConfig",
    "StatsMethod",
    "ValidationFailure",
    "VariantAnalysis",
    "VariantStats",
    "Verdict",
    "WinsorizationBounds",
    "absolute_effect",
    "add_missing_variants",
    "adjusted_p_values",
    "analyse_variants",
    "bayesian_test",
    "benjamini_hochberg_adjusted",
    "check_stats_options",
    "clamp",
    "compare",
    "compare_variants",
    "compute_experiment_result",
    "cuped_adjust",
    "effect_size",
    "expected_split",
    "fingerprint_options",
    "funnel_variant_stats",
    "holm_adjusted",
    "mean_variant_stats",
    "parse_stats_config",
    "ratio_variance",
    "ratio_variant_stats",
    "relative_effect",
    "run_test",
    "sample_ratio_mismatch",
    "sequential_halfwidth",
    "sequential_p_value",
    "sequential_relative_comparisons",
    "sequential_rho",
    "sequential_t_test",
    "split_baseline",
    "statistic_for",
    "validate_variant",
    "welch_satterthwaite_df",
    "welch_t_test",
    "winsorization_bounds",
    "winsorize",
    "zero_variant_stats",
]
