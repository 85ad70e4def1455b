"""Flagship's stats_config settings: how they are read, refused on write, and fingerprinted."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.experiment_rules import validate_stats_config
from domain.fingerprint import compute_metric_fingerprint, with_fingerprints
from domain.stats import Correction, check_stats_options, fingerprint_options, parse_stats_config

METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
START = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


def test_everything_on() -> None:
    config = parse_stats_config(
        {
            "method": "frequentist",
            "frequentist": {"sequential_testing_enabled": True, "sequential_tuning_parameter": 20000},
            "cuped": {"enabled": True, "lookback_days": 7},
            "multiple_comparison_correction": "benjamini_hochberg",
        }
    )
    assert (config.sequential, config.sequential_tuning_parameter) == (True, 20000.0)
    assert (config.cuped, config.cuped_lookback_days) == (True, 7)
    assert config.correction is Correction.BENJAMINI_HOCHBERG


def test_defaults() -> None:
    config = parse_stats_config(None)
    assert (config.sequential, config.sequential_tuning_parameter, config.correction) == (
        False,
        5000.0,
        Correction.NONE,
    )
    assert (config.cuped, config.cuped_lookback_days) == (False, 14)


@pytest.mark.parametrize(("stored", "days"), [(0, 1), (45, 30), ("9", 9), (None, 14), ("x", 14), (7.9, 7)])
def test_stored_lookback_is_clamped_like_upstream(stored: Any, days: int) -> None:
    assert (
        parse_stats_config({"cuped": {"enabled": True, "lookback_days": stored}}).cuped_lookback_days == days
    )


def test_correction_is_frequentist_only() -> None:
    assert parse_stats_config({"multiple_comparison_correction": "holm"}).correction is Correction.NONE
    assert (
        parse_stats_config({"method": "frequentist", "multiple_comparison_correction": "holm"}).correction
        is Correction.HOLM
    )


def _message(raw: dict[str, Any]) -> str:
    with pytest.raises(ValidationFailed) as caught:
        check_stats_options(raw)
    assert caught.value.attr == "stats_config"
    return caught.value.detail


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (
            {"frequentist": {"sequential_tuning_parameter": 0}},
            "Invalid sequential_tuning_parameter: '0'. Must be a number between 1 and 1000000000",
        ),
        (
            {"frequentist": {"sequential_tuning_parameter": 1e9 + 1}},
            "Invalid sequential_tuning_parameter: '1000000001.0'. Must be a number between 1 and 1000000000",
        ),
        (
            {"frequentist": {"sequential_tuning_parameter": "lots"}},
            "Invalid sequential_tuning_parameter: 'lots'. Must be a number between 1 and 1000000000",
        ),
        (
            {"frequentist": {"sequential_tuning_parameter": True}},
            "Invalid sequential_tuning_parameter: 'True'. Must be a number between 1 and 1000000000",
        ),
        (
            {"frequentist": {"sequential_testing_enabled": "yes"}},
            "Invalid sequential_testing_enabled: 'yes'. Must be true or false",
        ),
        (
            {"multiple_comparison_correction": "bonferroni"},
            "Invalid multiple_comparison_correction: 'bonferroni'. Must be one of: benjamini_hochberg, holm, none",
        ),
        (
            {"cuped": True},
            "Invalid cuped: 'True'. Must be an object like {'enabled': true, 'lookback_days': 14}",
        ),
        ({"cuped": {"enabled": 1}}, "Invalid cuped.enabled: '1'. Must be true or false"),
        (
            {"cuped": {"lookback_days": 0}},
            "Invalid cuped.lookback_days: '0'. Must be an integer between 1 and 30",
        ),
        (
            {"cuped": {"lookback_days": 31}},
            "Invalid cuped.lookback_days: '31'. Must be an integer between 1 and 30",
        ),
        (
            {"cuped": {"lookback_days": 7.5}},
            "Invalid cuped.lookback_days: '7.5'. Must be an integer between 1 and 30",
        ),
    ],
)
def test_malformed_settings_are_refused_with_attr_stats_config(raw: dict[str, Any], detail: str) -> None:
    assert _message(raw) == detail


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {},
        {"frequentist": {"sequential_testing_enabled": False, "sequential_tuning_parameter": 1}},
        {"frequentist": {"sequential_tuning_parameter": 1e9}},
        {"frequentist": "not an object"},  # upstream ignores a malformed section; so do we
        {"cuped": None},
        {"cuped": {"enabled": True, "lookback_days": 30}},
        {"multiple_comparison_correction": "none"},
    ],
)
def test_well_formed_settings_pass(raw: dict[str, Any] | None) -> None:
    check_stats_options(raw)


def test_validate_stats_config_runs_the_option_checks_after_posthogs() -> None:
    with pytest.raises(ValidationFailed, match="Invalid stats method"):
        validate_stats_config({"method": "magic", "multiple_comparison_correction": "x"}, ["control"])
    with pytest.raises(ValidationFailed, match="multiple_comparison_correction") as caught:
        validate_stats_config({"method": "frequentist", "multiple_comparison_correction": "x"}, ["control"])
    assert caught.value.attr == "stats_config"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# PostHog's recipe, by hand (the metric's own `kind` is one of the keys it drops).
POSTHOG_MINIMAL = _sha(
    '{"metric":{"metric_type":"mean","source":{"event":"purchase","kind":"EventsNode"}},'
    '"start_date":"2024-01-01T10:00:00+00:00","stats_method":"frequentist"}'
)


@pytest.mark.parametrize(
    "stats_config",
    [
        None,
        {"method": "frequentist"},
        {
            "method": "frequentist",
            "frequentist": {"sequential_testing_enabled": False, "sequential_tuning_parameter": 99},
        },
        {"method": "frequentist", "cuped": {"enabled": False, "lookback_days": 3}},
        {"method": "frequentist", "multiple_comparison_correction": "none"},
        # Settings the chosen engine does not use change nothing either.
        {"method": "frequentist", "bayesian": {"ci_level": 0.9}},
    ],
)
def test_default_settings_keep_posthogs_fingerprint(stats_config: dict[str, Any] | None) -> None:
    assert (
        compute_metric_fingerprint(METRIC, START, "frequentist", stats_config=stats_config) == POSTHOG_MINIMAL
    )


def test_a_bayesian_experiment_ignores_frequentist_only_settings() -> None:
    config = {"frequentist": {"sequential_testing_enabled": True}, "multiple_comparison_correction": "holm"}
    assert fingerprint_options(config) == {}


def test_non_default_settings_join_the_fingerprint() -> None:
    config = {
        "method": "frequentist",
        "frequentist": {"sequential_testing_enabled": True},
        "cuped": {"enabled": True},
        "multiple_comparison_correction": "holm",
    }
    expected = _sha(
        '{"metric":{"metric_type":"mean","source":{"event":"purchase","kind":"EventsNode"}},'
        '"start_date":"2024-01-01T10:00:00+00:00","stats_method":"frequentist",'
        '"stats_options":{"cuped_lookback_days":14,"multiple_comparison_correction":"holm",'
        '"sequential_tuning_parameter":5000.0}}'
    )
    assert compute_metric_fingerprint(METRIC, START, "frequentist", stats_config=config) == expected


def test_each_setting_on_its_own_makes_a_new_series() -> None:
    base: dict[str, Any] = {"method": "frequentist"}
    variants = [
        {**base, "frequentist": {"sequential_testing_enabled": True}},
        {**base, "frequentist": {"sequential_testing_enabled": True, "sequential_tuning_parameter": 10000}},
        {**base, "cuped": {"enabled": True}},
        {**base, "cuped": {"enabled": True, "lookback_days": 7}},
        {**base, "multiple_comparison_correction": "holm"},
        {**base, "multiple_comparison_correction": "benjamini_hochberg"},
    ]
    prints = {
        compute_metric_fingerprint(METRIC, START, "frequentist", stats_config=c) for c in [base, *variants]
    }
    assert len(prints) == len(variants) + 1


def test_with_fingerprints_uses_the_stats_config() -> None:
    config = {"method": "frequentist", "cuped": {"enabled": True}}
    [metric] = with_fingerprints(
        [METRIC],
        start_date=START,
        stats_config=config,
        exposure_criteria=None,
        only_count_matured_users=False,
        parameters=None,
    )
    assert metric["fingerprint"] == compute_metric_fingerprint(
        METRIC, START, "frequentist", stats_config=config
    )
    assert metric["fingerprint"] != POSTHOG_MINIMAL
