"""Multiple comparisons: the textbook Holm and Benjamini-Hochberg examples, and the result JSON."""

from __future__ import annotations

from typing import Any

import pytest

from domain.stats import (
    VariantStats,
    benjamini_hochberg_adjusted,
    compute_experiment_result,
    holm_adjusted,
)

# Benjamini & Hochberg (1995), section 4: fifteen p-values from a clinical trial.
BH_1995 = [
    0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
    0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000,
]  # fmt: skip


def test_holm_textbook_example() -> None:
    """Four tests at 0.05: sorted 0.005, 0.01, 0.03, 0.04 meet 0.05/4, 0.05/3, then 0.03 > 0.05/2 stops."""
    adjusted = holm_adjusted([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]


def test_holm_on_the_1995_trial_rejects_three() -> None:
    adjusted = holm_adjusted(BH_1995)
    assert sum(p < 0.05 for p in adjusted) == 3  # 0.0095 > 0.05/12 stops the step-down
    assert adjusted[:4] == pytest.approx([0.0015, 0.0056, 0.0247, 0.114])


def test_benjamini_hochberg_on_the_1995_trial_rejects_four() -> None:
    adjusted = benjamini_hochberg_adjusted(BH_1995)
    assert [p < 0.05 for p in adjusted] == [True] * 4 + [False] * 11  # largest i with p(i) <= i*0.05/15 is 4
    assert adjusted[0] == pytest.approx(0.0015)  # min over j of 15 p(j) / j, reached at j = 1
    assert adjusted[3] == pytest.approx(15 * 0.0095 / 4)
    assert adjusted[-1] == 1.0
    assert adjusted == sorted(adjusted)  # step-up: monotone in p


def test_input_order_and_ties_are_kept() -> None:
    assert holm_adjusted([0.04, 0.01, 0.04]) == pytest.approx([0.08, 0.03, 0.08])
    assert benjamini_hochberg_adjusted([0.04, 0.01, 0.04]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm_adjusted([]) == [] and benjamini_hochberg_adjusted([]) == []


def arms(*conversions: int, n: int = 1000) -> list[VariantStats]:
    keys = ["control", *(f"v{i}" for i in range(1, len(conversions)))]
    return [VariantStats(k, n, float(c), float(c)) for k, c in zip(keys, conversions, strict=True)]


def rows(variants: list[VariantStats], config: dict[str, Any]) -> list[dict[str, Any]]:
    return list(compute_experiment_result("funnel", variants, config)["variant_results"])


ABSOLUTE = {"method": "frequentist", "frequentist": {"difference_type": "ABSOLUTE"}}


@pytest.mark.parametrize(
    ("correction", "adjust", "verdicts"),
    [
        # raw p ≈ 0.021, 0.030, 0.77: Holm needs 0.021 < 0.05/3, BH only 0.030 <= 2 * 0.05/3.
        ("holm", holm_adjusted, [False, False, False]),
        ("benjamini_hochberg", benjamini_hochberg_adjusted, [True, True, False]),
    ],
)
def test_result_json_keeps_raw_fields_and_adds_adjusted_ones(
    correction: str, adjust: Any, verdicts: list[bool]
) -> None:
    variants = arms(100, 133, 131, 104)
    out = rows(variants, {**ABSOLUTE, "multiple_comparison_correction": correction})
    raw = rows(variants, ABSOLUTE)
    assert [r["p_value"] for r in out] == [r["p_value"] for r in raw]
    assert [r["significant"] for r in out] == [r["significant"] for r in raw] == [True, True, False]
    expected = adjust([r["p_value"] for r in raw])
    assert [r["adjusted_p_value"] for r in out] == pytest.approx(expected)
    assert [r["adjusted_significant"] for r in out] == verdicts


def test_variants_stopped_by_a_gate_are_not_in_the_family() -> None:
    variants = [*arms(100, 131, 128), VariantStats("tiny", 20, 3.0, 3.0)]
    out = rows(variants, {"method": "frequentist", "multiple_comparison_correction": "holm"})
    assert (
        out[2]["validation_failures"]
        and out[2]["adjusted_p_value"] is None
        and out[2]["adjusted_significant"] is None
    )
    assert [r["adjusted_p_value"] for r in out[:2]] == pytest.approx(
        holm_adjusted([r["p_value"] for r in out[:2]])
    )


@pytest.mark.parametrize(
    "config",
    [
        {"method": "frequentist"},
        {"method": "frequentist", "multiple_comparison_correction": "none"},
        {"method": "bayesian", "multiple_comparison_correction": "holm"},
        {"method": "frequentist", "multiple_comparison_correction": "bonferroni"},  # stored junk: default
    ],
)
def test_no_correction_leaves_the_adjusted_fields_null(config: dict[str, Any]) -> None:
    for row in rows(arms(100, 131, 128), config):
        assert row["adjusted_p_value"] is None and row["adjusted_significant"] is None


def test_sequential_p_values_are_corrected_too() -> None:
    config = {
        "method": "frequentist",
        "frequentist": {"sequential_testing_enabled": True},
        "multiple_comparison_correction": "holm",
    }
    out = rows(arms(1000, 1200, 1010, n=10000), config)
    assert [r["adjusted_p_value"] for r in out] == pytest.approx(holm_adjusted([r["p_value"] for r in out]))
