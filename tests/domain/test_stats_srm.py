"""Sample-ratio mismatch: chi-square computed by hand for 2, 3 and 4 variants with uneven splits, a
holdout, the shares a flag configures, and the `srm` object every result and day carries.

The p-values use the closed forms of the chi-square survival function for 1 to 4 degrees of
freedom, so the check does not lean on the library the code uses.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from domain.metric_engine import events_from_rows, metric_result, metric_series, to_micros
from domain.stats import expected_split, sample_ratio_mismatch
from tests.support.metric_events import at, exposure, mean, spec


def chi2_sf(x: float, df: int) -> float:
    half = x / 2
    return {
        1: math.erfc(math.sqrt(half)),
        2: math.exp(-half),
        3: math.erfc(math.sqrt(half)) + math.sqrt(2 * x / math.pi) * math.exp(-half),
        4: math.exp(-half) * (1 + half),
    }[df]


def split(*pairs: tuple[str, float]) -> dict[str, Any]:
    return {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": [{"key": k, "rollout_percentage": p} for k, p in pairs]},
    }


def test_two_variants_70_30() -> None:
    srm = sample_ratio_mismatch({"control": 720, "test": 280}, {"control": 0.7, "test": 0.3})
    chi = 20**2 / 700 + 20**2 / 300
    assert srm["chi_square"] == pytest.approx(chi)
    assert srm["p_value"] == pytest.approx(chi2_sf(chi, 1), rel=1e-12)
    assert srm["expected"] == pytest.approx({"control": 700.0, "test": 300.0})
    assert srm["observed"] == {"control": 720, "test": 280}
    assert srm["mismatch"] is False


def test_three_variants_50_30_20_mismatch() -> None:
    weights = expected_split(split(("control", 50), ("a", 30), ("b", 20)), ["control", "a", "b"])
    srm = sample_ratio_mismatch({"control": 5200, "a": 2900, "b": 1900}, weights)
    chi = 200**2 / 5000 + 100**2 / 3000 + 100**2 / 2000
    assert srm["chi_square"] == pytest.approx(chi)
    assert srm["p_value"] == pytest.approx(chi2_sf(chi, 2), rel=1e-12)
    assert srm["p_value"] < 0.001 and srm["mismatch"] is True


def test_four_variants_40_30_20_10() -> None:
    keys = ["control", "a", "b", "c"]
    weights = expected_split(split(("control", 40), ("a", 30), ("b", 20), ("c", 10)), keys)
    srm = sample_ratio_mismatch({"control": 410, "a": 290, "b": 205, "c": 95}, weights)
    chi = 10**2 / 400 + 10**2 / 300 + 5**2 / 200 + 5**2 / 100
    assert srm["chi_square"] == pytest.approx(chi)
    assert srm["p_value"] == pytest.approx(chi2_sf(chi, 3), rel=1e-12)
    assert srm["expected"] == pytest.approx({"control": 400.0, "a": 300.0, "b": 200.0, "c": 100.0})


def test_a_holdout_takes_its_share_of_everyone_first() -> None:
    filters = {**split(("control", 50), ("test", 50)), "holdout": {"id": 7, "exclusion_percentage": 20}}
    keys = ["control", "test", "holdout-7"]
    weights = expected_split(filters, keys)
    assert weights == pytest.approx({"control": 0.4, "test": 0.4, "holdout-7": 0.2})
    srm = sample_ratio_mismatch({"control": 380, "test": 370, "holdout-7": 250}, weights)
    chi = 20**2 / 400 + 30**2 / 400 + 50**2 / 200
    assert srm["chi_square"] == pytest.approx(chi)
    assert srm["p_value"] == pytest.approx(chi2_sf(chi, 2), rel=1e-12)
    assert srm["expected"] == pytest.approx({"control": 400.0, "test": 400.0, "holdout-7": 200.0})
    assert srm["mismatch"] is True


def test_a_partial_release_shrinks_the_variants_but_not_the_holdout() -> None:
    filters = {
        "groups": [{"properties": [], "rollout_percentage": 50}],
        "multivariate": {
            "variants": [
                {"key": "control", "rollout_percentage": 50},
                {"key": "test", "rollout_percentage": 50},
            ]
        },
        "holdout": {"id": 7, "exclusion_percentage": 20},
    }
    weights = expected_split(filters, ["control", "test", "holdout-7"])
    assert weights == pytest.approx({"control": 0.2, "test": 0.2, "holdout-7": 0.2})


def test_property_conditions_leave_the_holdout_out() -> None:
    filters = {
        "groups": [
            {"properties": [{"key": "plan", "value": "pro", "type": "person"}], "rollout_percentage": 100}
        ],
        "multivariate": {
            "variants": [
                {"key": "control", "rollout_percentage": 60},
                {"key": "test", "rollout_percentage": 40},
            ]
        },
        "holdout": {"id": 7, "exclusion_percentage": 20},
    }
    assert expected_split(filters, ["control", "test", "holdout-7"]) == pytest.approx(
        {"control": 0.48, "test": 0.32}
    )


def test_excluded_and_zero_share_variants_are_left_out() -> None:
    filters = split(("control", 50), ("a", 0), ("b", 25), ("c", 25))
    assert expected_split(filters, ["control", "a", "b"]) == pytest.approx({"control": 0.5, "b": 0.25})
    srm = sample_ratio_mismatch(
        {"control": 100, "a": 3, "b": 50}, expected_split(filters, ["control", "a", "b"])
    )
    assert set(srm["observed"]) == {"control", "b"} and srm["chi_square"] == pytest.approx(0.0)


def test_nothing_to_test_without_exposures() -> None:
    srm = sample_ratio_mismatch({}, {"control": 0.5, "test": 0.5})
    assert srm == {
        "p_value": 1.0,
        "chi_square": 0.0,
        "mismatch": False,
        "expected": {"control": 0.0, "test": 0.0},
        "observed": {"control": 0, "test": 0},
    }


def test_every_result_and_every_day_carries_srm_with_the_holdout() -> None:
    rows = [exposure(f"c{i}", "control", 1 + i) for i in range(6)]
    rows += [exposure(f"t{i}", "test", 1 + i) for i in range(2)]
    rows += [exposure(f"h{i}", "holdout-3", 30 + i) for i in range(4)]
    rows += [exposure("m", "control", 2), exposure("m", "test", 40)]  # `$multiple` from hour 40
    filters = {**split(("control", 50), ("test", 50)), "holdout": {"id": 3, "exclusion_percentage": 25}}
    experiment = spec(holdout_id=3, flag_filters=filters)
    first, second = metric_series(
        experiment, mean(), events_from_rows(rows), [to_micros(at(24)), to_micros(at(48))]
    )
    assert first["srm"]["observed"] == {"control": 7, "test": 2, "holdout-3": 0}
    assert second["srm"]["observed"] == {"control": 6, "test": 2, "holdout-3": 4}
    assert second["srm"]["expected"] == pytest.approx({"control": 4.5, "test": 4.5, "holdout-3": 3.0})
    assert second == metric_result(experiment, mean(), events_from_rows(rows), to_micros(at(48)))
    chi = 1.5**2 / 4.5 + 2.5**2 / 4.5 + 1**2 / 3
    assert second["srm"]["chi_square"] == pytest.approx(chi)
