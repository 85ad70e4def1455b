"""Experiment rules: parameters, stats config, existing flag, dates, create/update payload checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.experiment_rules import (
    ExperimentSnapshot,
    apply_exposure_criteria_defaults,
    apply_stats_config_defaults,
    ensure_flag_launchable,
    normalize_parameters_input,
    parameters_output,
    resolved_variant_keys,
    validate_create_keys,
    validate_date_range,
    validate_flag_for_experiment,
    validate_parameters,
    validate_stats_config,
    validate_update_payload,
    web_variants,
    writable_fields,
)

VARIANTS = [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 50}]
THREE = [*VARIANTS[:1], {"key": "a", "rollout_percentage": 25}, {"key": "b", "rollout_percentage": 25}]
MIN2 = "Feature flag must have at least 2 variants (control and at least one test variant)"
NO_CONTROL = "Feature flag must have a variant with key 'control'"
START = "2024-01-01T00:00:00Z"
FLAG_DELETED = "Experiment cannot be launched because its feature flag has been deleted."


def _split(key: str, pct: int) -> dict[str, Any]:
    return {"key": key, "split_percent": pct}


def _rollout(key: str, pct: int) -> dict[str, Any]:
    return {"key": key, "rollout_percentage": pct}


def _vs(*keys: str, pct: int | None = 50) -> dict[str, Any]:
    """`{"feature_flag_variants": [...]}` with one variant per key."""
    return {
        "feature_flag_variants": [
            {"key": k} if pct is None else {"key": k, "rollout_percentage": pct} for k in keys
        ]
    }


def _flag(*keys: str) -> dict[str, Any]:
    return {"multivariate": {"variants": [{"key": k} for k in keys]}}


def _raises(fn: Any, *args: Any, **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        fn(*args, **kwargs)
    return info.value


def _assert_error(err: ValidationFailed, detail: str, attr: str | None, code: str = "invalid_input") -> None:
    assert (err.detail, err.attr, err.code) == (detail, attr, code)


# --- parameters normalisation ------------------------------------------------------------------------


def test_split_percent_wins_and_is_renamed() -> None:
    sent = {"feature_flag_variants": [{"key": "control", "split_percent": 70, "rollout_percentage": 10}]}
    assert normalize_parameters_input(sent) == {"feature_flag_variants": [_rollout("control", 70)]}
    assert sent["feature_flag_variants"][0]["split_percent"] == 70  # input untouched


@pytest.mark.parametrize("spelling", ["Control", "CONTROL", "cOnTrOl"])
def test_control_casing_is_normalised(spelling: str) -> None:
    sent = {"feature_flag_variants": [_split(spelling, 50), _split("test", 50)]}
    assert normalize_parameters_input(sent) == {"feature_flag_variants": VARIANTS}


def test_control_casing_kept_when_exact_control_exists() -> None:
    sent = {"feature_flag_variants": [{"key": "control"}, {"key": "Control"}]}
    assert normalize_parameters_input(sent) == sent


def test_only_first_control_spelling_is_rewritten() -> None:
    sent = {"feature_flag_variants": [{"key": "Control"}, {"key": "CONTROL"}]}
    expected = {"feature_flag_variants": [{"key": "control"}, {"key": "CONTROL"}]}
    assert normalize_parameters_input(sent) == expected


@pytest.mark.parametrize("value", [None, {}, {"rollout_percentage": 5}, [1], {"feature_flag_variants": "x"}])
def test_normalisation_leaves_other_shapes_alone(value: Any) -> None:
    assert normalize_parameters_input(value) == value


def test_parameters_output_adds_split_percent() -> None:
    stored: dict[str, Any] = {
        "feature_flag_variants": [{"key": "control", "rollout_percentage": 50}, {"key": "test"}],
        "x": 1,
    }
    assert parameters_output(stored) == {
        "feature_flag_variants": [
            {"key": "control", "rollout_percentage": 50, "split_percent": 50},
            {"key": "test"},
        ],
        "x": 1,
    }
    assert "split_percent" not in stored["feature_flag_variants"][0]
    assert parameters_output(None) is None


# --- validate_parameters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "detail"),
    [
        ({"feature_flag_variants": ["control"]}, "Feature flag variant at index 0 must be an object"),
        (
            {"feature_flag_variants": [{"key": "control"}, 3]},
            "Feature flag variant at index 1 must be an object",
        ),
        (
            {"feature_flag_variants": [{"key": "c"}, {}]},
            "Feature flag variant at index 1 must have a 'key' field",
        ),
        (
            _vs("control", "test", pct=None),
            "Each variant must include split_percent (recommended) or rollout_percentage (deprecated).",
        ),
        (_vs(*[f"v{i}" for i in range(21)]), "Feature flag variants must be less than 21"),
        (_vs("control"), MIN2),
        (
            _vs("a", "b"),
            "Feature flag variants must contain a variant with key 'control' (lowercase, exactly). "
            "Got keys: ['a', 'b']. Rename the baseline variant's 'key' to 'control'.",
        ),
        ({"feature_flag_variants": "abc"}, "Feature flag variant at index 0 must be an object"),
    ],
)
def test_parameter_variant_errors(parameters: dict[str, Any], detail: str) -> None:
    _assert_error(_raises(validate_parameters, parameters), detail, "parameters")


def test_valid_parameters() -> None:
    validate_parameters(None)
    validate_parameters({})
    validate_parameters({"feature_flag_variants": []})
    validate_parameters({"feature_flag_variants": None, "rollout_percentage": 50})
    # Control need not be first and percentages are not summed here.
    validate_parameters(
        {
            "feature_flag_variants": [
                {"key": "t", "rollout_percentage": 1},
                {"key": "control", "split_percent": 1},
            ]
        }
    )
    validate_parameters(_vs(*[f"v{i}" for i in range(19)], "control", pct=5))


@pytest.mark.parametrize(
    ("extra", "variants", "detail"),
    [
        ({"excluded_variants": "a"}, THREE, "excluded_variants must be a list of strings"),
        ({"excluded_variants": ["a", 1]}, THREE, "excluded_variants must be a list of strings"),
        (
            {"excluded_variants": ["a"]},
            None,
            "excluded_variants requires feature_flag_variants in the same request — parameters are replaced "
            "as a whole on update, so send the full parameters object",
        ),
        (
            {"excluded_variants": ["holdout-3", "a"]},
            THREE,
            "cannot exclude holdout pseudo-variants: ['holdout-3']",
        ),
        ({"excluded_variants": ["control"]}, THREE, "baseline variant cannot be excluded ('control')"),
        (
            {"excluded_variants": ["b"], "stats_config": {"baseline_variant_key": "b"}},
            THREE,
            "baseline variant cannot be excluded ('b')",
        ),
        (
            {"excluded_variants": ["zz", "a", "yy"]},
            THREE,
            "unknown variants for this experiment: ['yy', 'zz']",
        ),
        ({"excluded_variants": ["a", "b"]}, THREE, "at least one test variant must remain in analysis"),
    ],
)
def test_excluded_variants_errors(extra: dict[str, Any], variants: list[Any] | None, detail: str) -> None:
    parameters = {**extra, **({"feature_flag_variants": variants} if variants else {})}
    _assert_error(_raises(validate_parameters, parameters), detail, "parameters")


def test_excluded_variants_accepted() -> None:
    validate_parameters({"feature_flag_variants": THREE, "excluded_variants": ["a"]})
    validate_parameters({"feature_flag_variants": THREE, "excluded_variants": []})
    validate_parameters({"excluded_variants": []})


def test_exposure_criteria_defaults() -> None:
    assert apply_exposure_criteria_defaults(None) == {"filterTestAccounts": True}
    kept = {"filterTestAccounts": False, "x": 1}
    assert apply_exposure_criteria_defaults(kept) == kept


# --- stats config ------------------------------------------------------------------------------------


def test_stats_config_errors() -> None:
    _assert_error(
        _raises(validate_stats_config, {"method": "magic"}, ["control"]),
        "Invalid stats method: 'magic'. Must be one of: bayesian, frequentist",
        None,
    )
    _assert_error(
        _raises(validate_stats_config, {"baseline_variant_key": "x"}, ["test", "control", "b"]),
        "Invalid baseline_variant_key: 'x'. Must be one of: b, control, test",
        None,
    )


def test_stats_config_accepted() -> None:
    validate_stats_config(None, ["control"])
    validate_stats_config({"method": "frequentist", "baseline_variant_key": "test"}, ["control", "test"])
    validate_stats_config({"baseline_variant_key": "anything"}, None)  # no keys known: not checked


def test_stats_config_defaults() -> None:
    assert apply_stats_config_defaults(None) == {"method": "bayesian"}
    assert apply_stats_config_defaults({"method": ""}, default_method="frequentist") == {
        "method": "frequentist"
    }
    assert apply_stats_config_defaults(None, default_confidence_level=0.9) == {
        "method": "bayesian",
        "bayesian": {"ci_level": 0.9},
        "frequentist": {"alpha": 1 - 0.9},
    }
    sent = {"method": "frequentist", "frequentist": {"alpha": 0.2}}
    kept = apply_stats_config_defaults(sent, default_confidence_level=0.99)
    assert kept == {"method": "frequentist", "frequentist": {"alpha": 0.2}, "bayesian": {"ci_level": 0.99}}


def test_resolved_variant_keys() -> None:
    flag = {"multivariate": {"variants": [{"key": "control"}, {"key": "flag-test"}]}}
    assert resolved_variant_keys({"feature_flag_variants": VARIANTS}, None, flag) == ["control", "test"]
    assert resolved_variant_keys(None, {"feature_flag_variants": THREE}, flag) == ["control", "a", "b"]
    assert resolved_variant_keys({}, {}, flag) == ["control", "flag-test"]


# --- existing flag, dates, create keys ---------------------------------------------------------------


def test_existing_flag_checks() -> None:
    _assert_error(_raises(validate_flag_for_experiment, _flag("control")), MIN2, None)
    _assert_error(_raises(validate_flag_for_experiment, {}), MIN2, None)
    _assert_error(_raises(validate_flag_for_experiment, _flag("a", "b")), NO_CONTROL, None)
    validate_flag_for_experiment(_flag("b", "control"))


def test_launch_guard() -> None:
    good = {"multivariate": {"variants": VARIANTS}}
    _assert_error(_raises(ensure_flag_launchable, True, good), FLAG_DELETED, None)
    ensure_flag_launchable(False, good)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2024-01-02T00:00:00Z", "2024-01-01T00:00:00Z"),
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
        (datetime(2024, 1, 2, tzinfo=UTC), "2024-01-01T23:00"),
    ],
)
def test_end_date_must_be_after_start(start: object, end: object) -> None:
    _assert_error(_raises(validate_date_range, start, end), "End date must be after start date", None)


def test_date_range_only_checks_when_both_present() -> None:
    validate_date_range(None, "2020-01-01T00:00:00Z")
    validate_date_range("2024-01-01T00:00:00Z", None)
    validate_date_range("2024-01-01T00:00:00+02:00", "2024-01-01T00:00:00Z")


def test_create_keys() -> None:
    validate_create_keys(
        ["name", "get_feature_flag_key", "holdout", "update_feature_flag_params", "_create_in_folder"]
    )
    err = _raises(validate_create_keys, ["name", "zeta", "alpha"])
    _assert_error(err, "Can't create keys: alpha, zeta on Experiment", None)


def test_writable_fields_emulates_drf() -> None:
    body = dict(
        feature_flag_key="k", holdout_id=3, holdout={}, id=9, status="x", foo=1, name="n", variants={}
    )
    assert writable_fields(body) == {"get_feature_flag_key": "k", "holdout": 3, "name": "n"}


def test_web_variants() -> None:
    expected = {"control": {"rollout_percentage": 50}, "test": {"rollout_percentage": 50}}
    assert web_variants(VARIANTS) == expected


# --- update payload ----------------------------------------------------------------------------------


def _snap(**kwargs: Any) -> ExperimentSnapshot:
    defaults: dict[str, Any] = {"status": "draft", "feature_flag_key": "flag", "flag_variants": VARIANTS}
    return ExperimentSnapshot(**{**defaults, **kwargs})


RUNNING = {"status": "running", "start_date": datetime(2024, 1, 10, tzinfo=UTC)}
RUNNING_VARIANTS = "Can't update feature_flag_variants on Experiment"


@pytest.mark.parametrize(
    ("snapshot", "payload", "detail"),
    [
        (
            _snap(deleted=True, flag_deleted=True),
            {"deleted": False},
            "Cannot restore experiment: the linked feature flag has been deleted. "
            "Restore the feature flag first, then restore the experiment.",
        ),
        (_snap(flag_deleted=True), {"start_date": START}, FLAG_DELETED),
        (_snap(flag_variants=[{"key": "control"}]), {"start_date": START}, MIN2),
        (_snap(flag_variants=[{"key": "a"}, {"key": "b"}]), {"start_date": START}, NO_CONTROL),
        (
            _snap(has_legacy_metrics=True),
            {"name": "n", "metrics": [], "holdout_id": 1, "feature_flag_key": "other"},
            "This experiment uses legacy metric formats and can only have its name, description, or end_date "
            "updated. Cannot update: holdout, metrics",
        ),
        (
            _snap(**RUNNING, has_legacy_metrics=True),
            {"end_date": "2024-01-09"},
            "End date must be after start date",
        ),
        (_snap(), {"feature_flag_key": "other"}, "Can't update keys: get_feature_flag_key on Experiment"),
        (_snap(), {"type": "web"}, "Can't update keys: type on Experiment"),
        (
            _snap(),
            {"type": "web", "_create_in_folder": ""},
            "Can't update keys: _create_in_folder, type on Experiment",
        ),
        (_snap(**RUNNING), {"parameters": _vs("control", "test", "c")}, RUNNING_VARIANTS),
        (_snap(status="stopped"), {"parameters": _vs("control", "other")}, RUNNING_VARIANTS),
        (_snap(**RUNNING), {"parameters": {"feature_flag_variants": None}}, RUNNING_VARIANTS),
        (_snap(**RUNNING, holdout_id=None), {"holdout_id": 4}, "Can't update holdout on running Experiment"),
        (_snap(**RUNNING, holdout_id=4), {"holdout_id": None}, "Can't update holdout on running Experiment"),
        (_snap(), {"filters": {"properties": [{}]}}, "Experiments do not support global filter properties"),
    ],
)
def test_update_payload_errors(snapshot: ExperimentSnapshot, payload: dict[str, Any], detail: str) -> None:
    _assert_error(_raises(validate_update_payload, snapshot, payload), detail, None)


def test_update_payload_accepted_cases() -> None:
    running = _snap(**RUNNING, holdout_id=4)
    # Same variant keys with new percentages, equal holdout, current key echoed, ignored fields.
    data = validate_update_payload(
        running,
        {
            "parameters": {"feature_flag_variants": [_split("Control", 90), _split("test", 10)]},
            "holdout_id": 4,
            "feature_flag_key": "flag",
            "update_feature_flag_params": True,
            "allow_unknown_events": True,
            "status": "paused",
            "holdout": {"id": 99},
            "filters": {"properties": []},
        },
    )
    assert data == {
        "parameters": {"feature_flag_variants": [_rollout("control", 90), _rollout("test", 10)]},
        "holdout": 4,
        "filters": {"properties": []},
    }
    # Drafts may change variants and holdout freely; PATCH of only end_date before start is fine.
    validate_update_payload(_snap(), {"parameters": {"feature_flag_variants": THREE}, "holdout_id": 9})
    validate_update_payload(_snap(**RUNNING), {"end_date": "2020-01-01T00:00:00Z"})
    legacy = _snap(**RUNNING, has_legacy_metrics=True)
    validate_update_payload(legacy, {"name": "n", "description": "d", "deleted": True})
    validate_update_payload(_snap(deleted=True), {"deleted": False})
    validate_update_payload(_snap(), {"parameters": None})


def test_restore_check_runs_before_legacy_and_key_checks() -> None:
    snapshot = _snap(deleted=True, flag_deleted=True, has_legacy_metrics=True)
    err = _raises(validate_update_payload, snapshot, {"deleted": False, "type": "web"})
    assert err.detail.startswith("Cannot restore experiment")
