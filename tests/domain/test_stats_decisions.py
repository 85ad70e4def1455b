"""`sequential_relative_comparisons`: the autopilot's question gets the result's own numbers."""

from __future__ import annotations

import pytest

from domain.stats import (
    SequentialComparison,
    VariantStats,
    Verdict,
    compute_experiment_result,
    holm_adjusted,
    sequential_relative_comparisons,
)

SEQUENTIAL_HOLM = {
    "method": "frequentist",
    "frequentist": {"sequential_testing_enabled": True},
    "multiple_comparison_correction": "holm",
}


def decided(decisions: dict[str, SequentialComparison | None], key: str) -> SequentialComparison:
    decision = decisions[key]
    assert decision is not None
    return decision


def arms(*conversions: int, n: int = 20000) -> list[VariantStats]:
    keys = ["control", *(f"v{i}" for i in range(1, len(conversions)))]
    return [VariantStats(k, n, float(c), float(c)) for k, c in zip(keys, conversions, strict=True)]


def test_same_numbers_as_the_sequential_holm_result() -> None:
    variants = arms(2000, 2300, 1990, 1700)
    decisions = sequential_relative_comparisons("funnel", variants)
    rows = compute_experiment_result("funnel", variants, SEQUENTIAL_HOLM)["variant_results"]
    assert list(decisions) == ["v1", "v2", "v3"]
    for row in rows:
        decision = decisions[row["key"]]
        assert decision is not None
        assert list(decision.interval) == row["confidence_interval"]
        assert decision.p_value == row["p_value"]
        assert decision.holm_p_value == row["adjusted_p_value"]
        assert decision.holm_significant is row["adjusted_significant"]
        assert decision.relative_change == pytest.approx(sum(row["confidence_interval"]) / 2)
    holm = holm_adjusted([r["p_value"] for r in rows])
    assert [decided(decisions, k).holm_p_value for k in ("v1", "v2", "v3")] == pytest.approx(holm)


def test_verdicts_follow_the_goal() -> None:
    variants = arms(2000, 2300, 1990, 1700)
    up = sequential_relative_comparisons("funnel", variants)
    down = sequential_relative_comparisons("funnel", variants, goal="decrease")
    keys = ("v1", "v2", "v3")
    assert [decided(up, k).verdict for k in keys] == [Verdict.BETTER, Verdict.INCONCLUSIVE, Verdict.WORSE]
    assert [decided(down, k).verdict for k in keys] == [Verdict.WORSE, Verdict.INCONCLUSIVE, Verdict.BETTER]


def test_gated_variants_have_no_decision() -> None:
    decisions = sequential_relative_comparisons(
        "funnel", [*arms(2000, 2300), VariantStats("tiny", 10, 1.0, 1.0)]
    )
    assert decisions["tiny"] is None and decisions["v1"] is not None


def test_alpha_and_tuning_parameter_are_honoured() -> None:
    variants = arms(2000, 2150)
    loose = sequential_relative_comparisons("funnel", variants, alpha=0.2, tuning_parameter=40000)["v1"]
    strict = sequential_relative_comparisons("funnel", variants, alpha=0.01)["v1"]
    assert loose is not None and strict is not None
    assert loose.interval[1] - loose.interval[0] < strict.interval[1] - strict.interval[0]
    with pytest.raises(ValueError, match="alpha"):
        sequential_relative_comparisons("funnel", variants, alpha=1.5)
    with pytest.raises(ValueError, match="tuning_parameter"):
        sequential_relative_comparisons("funnel", variants, tuning_parameter=0.5)


def test_cuped_when_the_sums_carry_a_covariate() -> None:
    def arm(key: str, converted: float, both: float) -> VariantStats:
        """3000 users, 300 of whom converted before exposure (binary covariate)."""
        return VariantStats(
            key,
            3000,
            converted,
            converted,
            covariate_sum=300.0,
            covariate_sum_squares=300.0,
            covariate_sum_product=both,
        )

    control, test = arm("control", 300.0, 200.0), arm("test", 360.0, 240.0)
    adjusted = sequential_relative_comparisons("funnel", [control, test], cuped=True)["test"]
    plain = sequential_relative_comparisons("funnel", [control, test])["test"]
    assert adjusted is not None and plain is not None
    assert adjusted.variance_reduction is not None and adjusted.variance_reduction > 0
    assert plain.variance_reduction is None
    assert adjusted.interval[1] - adjusted.interval[0] < plain.interval[1] - plain.interval[0]
