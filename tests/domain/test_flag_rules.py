"""Feature-flag rules: FeatureFlagSerializer messages and the experiment flag rewrites."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import ValidationFailed
from domain.flag_rules import (
    build_experiment_flag,
    build_experiment_flag_filters,
    default_experiment_variants,
    ensure_variant_on_flag,
    flag_variant_keys,
    holdout_filters_for_flag,
    parameters_from_flag_filters,
    ship_variant_filters,
    sync_flag_filters_from_parameters,
    validate_flag_filters,
    validate_flag_key,
    with_holdout_filters,
)

CONTROL_TEST = [
    {"key": "control", "name": "Control", "rollout_percentage": 50},
    {"key": "test", "rollout_percentage": 50},
]
HOLDOUT = {"id": 7, "filters": [{"properties": [], "rollout_percentage": 10, "variant": "holdout-7"}]}


def _raises(fn: Any, *args: Any, **kwargs: Any) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        fn(*args, **kwargs)
    return info.value


# --- key -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "detail", "code"),
    [
        ("my key!", "Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "invalid_key"),
        ("é", "Only letters, numbers, hyphens (-) & underscores (_) are allowed.", "invalid_key"),
        ("", "This field may not be blank.", "blank"),
        ("   ", "This field may not be blank.", "blank"),
        (None, "This field may not be null.", "null"),
        (["a"], "Not a valid string.", "invalid_input"),
        ("k" * 401, "Ensure this field has no more than 400 characters.", "max_length"),
    ],
)
def test_flag_key_errors(key: object, detail: str, code: str) -> None:
    err = _raises(validate_flag_key, key)
    assert (err.detail, err.attr, err.code) == (detail, "key", code)


def test_flag_key_is_trimmed_and_numbers_become_strings() -> None:
    assert validate_flag_key("  my-flag_1 ") == "my-flag_1"
    assert validate_flag_key(123) == "123"


def test_flag_key_uniqueness_is_checked_before_characters() -> None:
    err = _raises(validate_flag_key, "taken", key_exists=lambda key: key == "taken")
    assert (err.detail, err.attr, err.code) == (
        "There is already a feature flag with this key.",
        "key",
        "unique",
    )
    assert validate_flag_key("free", key_exists=lambda key: False) == "free"


# --- filters ---------------------------------------------------------------------------------------


def _filters(variants: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"groups": [{"properties": [], "rollout_percentage": 100}]}
    if variants is not None:
        base["multivariate"] = {"variants": variants}
    return {**base, **extra}


@pytest.mark.parametrize(
    "variants",
    [
        [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 25}],
        [{"key": "control", "rollout_percentage": 50}, {"key": "test", "rollout_percentage": 60}],
        [
            {"key": "control", "rollout_percentage": 100},
            {"key": "test"},
            {"key": "x", "rollout_percentage": 1},
        ],
        [{"key": "control", "rollout_percentage": "50"}, {"key": "test", "rollout_percentage": 50}],
    ],
)
def test_variant_percentages_must_sum_to_100(variants: list[dict[str, Any]]) -> None:
    err = _raises(validate_flag_filters, _filters(variants))
    assert err.detail == "Invalid variant definitions: Variant rollout percentages must sum to 100."
    assert (err.attr, err.code) == ("filters", "invalid_input")


def test_valid_filters_pass() -> None:
    validate_flag_filters(_filters(CONTROL_TEST, payloads={"test": '{"a": 1}'}))
    validate_flag_filters({"groups": [{"properties": [], "rollout_percentage": None}]})
    validate_flag_filters({"groups": [], "multivariate": None})


@pytest.mark.parametrize(
    ("rollout", "detail", "code"),
    [
        (-1, "Ensure this value is greater than or equal to 0.", "min_value"),
        (100.5, "Ensure this value is less than or equal to 100.", "max_value"),
        (101, "Ensure this value is less than or equal to 100.", "max_value"),
        ("50", "A valid number is required.", "invalid_input"),
        (True, "A valid number is required.", "invalid_input"),
    ],
)
def test_group_rollout_must_be_within_0_and_100(rollout: object, detail: str, code: str) -> None:
    err = _raises(validate_flag_filters, {"groups": [{"properties": [], "rollout_percentage": rollout}]})
    assert (err.detail, err.attr, err.code) == (detail, "filters", code)


def test_group_rollout_bounds_are_inclusive() -> None:
    validate_flag_filters({"groups": [{"rollout_percentage": 0}, {"rollout_percentage": 100}]})


def test_variant_override_must_exist() -> None:
    filters = _filters(CONTROL_TEST)
    filters["groups"][0]["variant"] = "nope"
    err = _raises(validate_flag_filters, filters)
    assert (err.detail, err.attr) == ("Filters are not valid (variant override does not exist)", "filters")


@pytest.mark.parametrize(
    ("filters", "detail"),
    [
        (_filters(CONTROL_TEST, payloads=[]), "Payloads must be passed as a dictionary"),
        (_filters(CONTROL_TEST, payloads={"test": "{bad"}), "Payload value is not valid JSON"),
        (
            _filters(CONTROL_TEST, payloads={"other": "1"}),
            "Payload keys must match a variant key for multivariate flags",
        ),
        (_filters(None, payloads={"false": "1"}), "Payload keys must be 'true' for boolean flags"),
    ],
)
def test_payload_errors(filters: dict[str, Any], detail: str) -> None:
    err = _raises(validate_flag_filters, filters)
    assert (err.detail, err.attr) == (detail, "filters")


# --- new experiment flag ---------------------------------------------------------------------------


def test_default_variants_are_a_fresh_copy() -> None:
    variants = default_experiment_variants()
    assert variants == [
        {"key": "control", "name": "Control Group", "rollout_percentage": 50},
        {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
    ]
    variants[0]["key"] = "changed"
    assert default_experiment_variants()[0]["key"] == "control"


def test_new_flag_filters_without_parameters() -> None:
    assert build_experiment_flag_filters(None, None) == {
        "groups": [{"properties": [], "rollout_percentage": 100}],
        "multivariate": {"variants": default_experiment_variants()},
        "aggregation_group_type_index": None,
        "holdout": None,
    }


def test_new_flag_filters_from_parameters_and_holdout() -> None:
    parameters = {
        "feature_flag_variants": CONTROL_TEST,
        "rollout_percentage": 30,
        "aggregation_group_type_index": 1,
        "feature_flag_payloads": {"test": '{"x": 1}'},
    }
    filters = build_experiment_flag_filters(parameters, HOLDOUT)
    assert filters == {
        "groups": [{"properties": [], "rollout_percentage": 30}],
        "multivariate": {"variants": CONTROL_TEST},
        "aggregation_group_type_index": 1,
        "holdout": {"id": 7, "exclusion_percentage": 10},
        "payloads": {"test": '{"x": 1}'},
    }
    filters["multivariate"]["variants"][0]["key"] = "mutated"
    assert CONTROL_TEST[0]["key"] == "control"  # inputs are never shared


def test_new_flag_filters_keep_an_explicit_zero_rollout_and_skip_empty_payloads() -> None:
    filters = build_experiment_flag_filters({"rollout_percentage": 0, "feature_flag_payloads": {}}, None)
    assert filters["groups"] == [{"properties": [], "rollout_percentage": 0}]
    assert "payloads" not in filters


def test_new_flag_payload() -> None:
    flag = build_experiment_flag(
        "exp-flag", "My exp", {"ensure_experience_continuity": True}, None, active=False
    )
    assert flag["key"] == "exp-flag"
    assert flag["name"] == "Feature Flag for Experiment My exp"
    assert flag["active"] is False
    assert flag["ensure_experience_continuity"] is True
    assert flag["creation_context"] == "experiments"
    defaulted = build_experiment_flag("k", "n", None, None, active=True, persistence_default=True)
    assert (defaulted["active"], defaulted["ensure_experience_continuity"]) == (True, True)
    assert build_experiment_flag("k", "n", None, None, active=True)["ensure_experience_continuity"] is False


# --- holdout ---------------------------------------------------------------------------------------


def test_holdout_filters_for_flag() -> None:
    assert holdout_filters_for_flag(None, None) == {"holdout": None}
    assert holdout_filters_for_flag(3, []) == {"holdout": None}
    assert holdout_filters_for_flag(3, [{"rollout_percentage": 20}, {"rollout_percentage": 5}]) == {
        "holdout": {"id": 3, "exclusion_percentage": 20}
    }


def test_with_holdout_filters_only_rewrites_holdout() -> None:
    old = {"groups": [{"rollout_percentage": 40}], "holdout": None, "payloads": {"a": "1"}}
    assert with_holdout_filters(old, HOLDOUT) == {**old, "holdout": {"id": 7, "exclusion_percentage": 10}}
    assert with_holdout_filters({**old, "holdout": {"id": 1}}, None)["holdout"] is None


# --- update sync -----------------------------------------------------------------------------------


OLD_FILTERS: dict[str, Any] = {
    "groups": [
        {"properties": [{"key": "email", "type": "person"}], "rollout_percentage": 40},
        {"properties": [], "rollout_percentage": 10},
    ],
    "multivariate": {"variants": CONTROL_TEST},
    "aggregation_group_type_index": 0,
    "payloads": {"control": "1"},
    "holdout": {"id": 9, "exclusion_percentage": 5},
}


def test_sync_filters_replace_first_group_rollout_and_keep_the_rest() -> None:
    variants = [{"key": "control", "rollout_percentage": 20}, {"key": "test", "rollout_percentage": 80}]
    new = sync_flag_filters_from_parameters(
        OLD_FILTERS, {"feature_flag_variants": variants, "rollout_percentage": 70}, HOLDOUT
    )
    assert new == {
        "groups": [
            {"properties": [{"key": "email", "type": "person"}], "rollout_percentage": 70},
            {"properties": [], "rollout_percentage": 10},
        ],
        "multivariate": {"variants": variants},
        "aggregation_group_type_index": None,
        "payloads": {"control": "1"},
        "holdout": {"id": 7, "exclusion_percentage": 10},
    }
    assert OLD_FILTERS["groups"][0]["rollout_percentage"] == 40


def test_sync_filters_without_variants_resets_to_default_split() -> None:
    new = sync_flag_filters_from_parameters(OLD_FILTERS, {"minimum_detectable_effect": 30}, None)
    assert new["multivariate"] == {"variants": default_experiment_variants()}
    assert new["groups"] == OLD_FILTERS["groups"]
    assert new["holdout"] is None


def test_sync_filters_with_aggregation_index() -> None:
    new = sync_flag_filters_from_parameters(
        {"groups": []}, {"aggregation_group_type_index": 2, "rollout_percentage": 5}, None
    )
    assert new["aggregation_group_type_index"] == 2
    assert new["groups"] == []  # no group to carry the rollout


# --- ship variant ----------------------------------------------------------------------------------


SHIP_FILTERS: dict[str, Any] = {
    "groups": [{"properties": [{"key": "plan", "type": "person"}], "rollout_percentage": 50}],
    "multivariate": {
        "variants": [
            {"key": "control", "name": "Control", "rollout_percentage": 34},
            {"key": "test", "name": "", "rollout_percentage": 33},
            {"key": "test-2", "rollout_percentage": 33},
        ]
    },
    "aggregation_group_type_index": None,
    "payloads": {"test": '"x"'},
    "holdout": {"id": 7, "exclusion_percentage": 10},
    "super_groups": [{"properties": []}],
}
SHIPPED_VARIANTS = [
    {"key": "control", "rollout_percentage": 0, "name": "Control"},
    {"key": "test", "rollout_percentage": 100},
    {"key": "test-2", "rollout_percentage": 0},
]


def test_ship_variant_keeps_release_conditions_by_default() -> None:
    assert ship_variant_filters(SHIP_FILTERS, "test") == {
        "aggregation_group_type_index": None,
        "payloads": {"test": '"x"'},
        "multivariate": {"variants": SHIPPED_VARIANTS},
        "groups": SHIP_FILTERS["groups"],
    }


def test_ship_variant_release_to_everyone_prepends_catch_all_group() -> None:
    new = ship_variant_filters(SHIP_FILTERS, "test", release_to_everyone=True)
    assert new["groups"] == [
        {
            "properties": [],
            "rollout_percentage": 100,
            "description": "Added automatically when the experiment was ended to keep only one variant.",
        },
        *SHIP_FILTERS["groups"],
    ]
    assert new["multivariate"] == {"variants": SHIPPED_VARIANTS}
    assert "holdout" not in new and "super_groups" not in new


def test_ship_variant_defaults_payloads_to_empty_object() -> None:
    assert ship_variant_filters({"multivariate": {"variants": CONTROL_TEST}}, "control")["payloads"] == {}


def test_ship_variant_key_must_exist() -> None:
    ensure_variant_on_flag(SHIP_FILTERS, "test-2")
    err = _raises(ensure_variant_on_flag, SHIP_FILTERS, "nope")
    assert (err.detail, err.attr) == ("Variant 'nope' not found on feature flag.", None)


# --- helpers ---------------------------------------------------------------------------------------


def test_flag_variant_keys() -> None:
    assert flag_variant_keys(SHIP_FILTERS) == ["control", "test", "test-2"]
    assert flag_variant_keys({"multivariate": None}) == []
    assert flag_variant_keys(None) == []


def test_parameters_back_sync_from_flag() -> None:
    params = {"feature_flag_variants": [], "aggregation_group_type_index": 1, "minimum_detectable_effect": 5}
    synced = parameters_from_flag_filters(params, {"multivariate": {"variants": CONTROL_TEST}})
    assert synced == {"feature_flag_variants": CONTROL_TEST, "minimum_detectable_effect": 5}
    assert parameters_from_flag_filters(None, {"aggregation_group_type_index": 2}) == {
        "feature_flag_variants": [],
        "aggregation_group_type_index": 2,
    }


def test_filters_the_engine_could_not_serve_are_refused() -> None:
    import pytest

    from domain.errors import ValidationFailed
    from domain.flag_rules import validate_flag_filters

    bad_variant = {
        "multivariate": {"variants": [{"rollout_percentage": 50}, {"key": "b", "rollout_percentage": 50}]}
    }
    bad_holdout = {"holdout": {"id": 1, "exclusion_percentage": "ten"}}
    for filters in (bad_variant, bad_holdout):
        with pytest.raises(ValidationFailed) as err:
            validate_flag_filters(filters)
        assert err.value.attr == "filters"
