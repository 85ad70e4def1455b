"""Flag evaluation rules and reasons (the SDK comparison over many identities is in test_flag_oracle.py)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.flag_evaluation import (
    REASON_PRIORITY,
    CompiledFlag,
    FlagDefinition,
    FlagResult,
    ReasonCode,
    evaluate_flag,
    evaluate_flags,
)
from domain.flag_hashing import hash_fraction, holdout_fraction

MAPPING = {"0": "company"}
IDS = [f"user-{i}" for i in range(400)]


def _flag(filters: dict[str, Any], key: str = "flag", **fields: Any) -> FlagDefinition:
    return FlagDefinition(id=1, key=key, filters=filters, **fields)


def _condition(rollout: float | None = 100, *props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"properties": list(props), "rollout_percentage": rollout, **extra}


def _plan(value: Any, **extra: Any) -> dict[str, Any]:
    return {"key": "plan", "operator": "exact", "value": value, "type": "person", **extra}


def _variants(*split: float) -> dict[str, Any]:
    return {"variants": [{"key": f"v{i}", "rollout_percentage": p} for i, p in enumerate(split)]}


def _first_id(predicate: Any) -> str:
    return next(i for i in IDS if predicate(i))


def test_priorities_are_the_documented_ones() -> None:
    assert [(code.value, REASON_PRIORITY[code]) for code in ReasonCode] == [
        ("super_condition_value", 6),
        ("holdout_condition_value", 5),
        ("condition_match", 4),
        ("no_group_type", 3),
        ("out_of_rollout_bound", 2),
        ("no_condition_match", 1),
        ("flag_disabled", 0),
        ("missing_dependency", -1),
    ]


@pytest.mark.parametrize("fields", [{"active": False}, {"deleted": True}])
def test_inactive_or_deleted_is_disabled(fields: dict[str, Any]) -> None:
    result = evaluate_flag(_flag({"groups": [_condition()], "payloads": {"true": "1"}}, **fields), "u")
    assert result == FlagResult(
        "flag", False, None, ReasonCode.FLAG_DISABLED, None, "Feature flag is disabled"
    )


def test_condition_match_reports_its_set_and_the_true_payload() -> None:
    flag = _flag(
        {"groups": [_condition(100, _plan("pro")), _condition(100)], "payloads": {"true": '{"a":1}'}}
    )
    first = evaluate_flag(flag, "u", person_properties={"plan": "pro"})
    second = evaluate_flag(flag, "u", person_properties={"plan": "free"})
    assert (first.enabled, first.variant, first.condition_index, first.description) == (
        True,
        None,
        0,
        "Matched condition set 1",
    )
    assert (second.reason_code, second.condition_index, second.description) == (
        ReasonCode.CONDITION_MATCH,
        1,
        "Matched condition set 2",
    )
    assert first.payload == second.payload == '{"a":1}'
    assert first.value is True


def test_rollout_boundaries() -> None:
    for distinct_id in IDS:
        fraction = hash_fraction("flag", distinct_id)
        for rollout in (0, 1, 33, 99.9):
            result = evaluate_flag(_flag({"groups": [_condition(rollout)]}), distinct_id)
            assert result.enabled is (fraction <= rollout / 100)
        assert evaluate_flag(_flag({"groups": [_condition(100)]}), distinct_id).enabled
        assert evaluate_flag(_flag({"groups": [_condition(None)]}), distinct_id).enabled
    out = evaluate_flag(_flag({"groups": [_condition(0)]}), "u")
    assert (out.reason_code, out.condition_index, out.description) == (
        ReasonCode.OUT_OF_ROLLOUT_BOUND,
        0,
        "Out of rollout bound",
    )


def test_no_condition_match_reports_the_last_condition() -> None:
    flag = _flag({"groups": [_condition(100, _plan("a")), _condition(100, _plan("b"))]})
    result = evaluate_flag(flag, "u", person_properties={"plan": "c"})
    assert (result.enabled, result.reason_code, result.condition_index, result.description) == (
        False,
        ReasonCode.NO_CONDITION_MATCH,
        1,
        "No matching condition set",
    )
    empty = evaluate_flag(_flag({"groups": []}), "u")
    assert (empty.reason_code, empty.condition_index) == (ReasonCode.NO_CONDITION_MATCH, None)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_out_of_rollout_outranks_no_match(order: tuple[int, int]) -> None:
    conditions = [_condition(0), _condition(100, _plan("never"))]
    flag = _flag({"groups": [conditions[i] for i in order]})
    result = evaluate_flag(flag, "u", person_properties={"plan": "x"})
    assert (result.reason_code, result.condition_index) == (ReasonCode.OUT_OF_ROLLOUT_BOUND, order.index(0))


def test_conditions_run_in_declared_order_even_with_a_variant_override() -> None:
    filters = {
        "groups": [_condition(100), _condition(100, _plan("pro"), variant="v1")],
        "multivariate": _variants(100, 0),
    }
    result = evaluate_flag(_flag(filters), "u", person_properties={"plan": "pro"})
    assert (result.variant, result.condition_index) == ("v0", 0)  # the catch-all wins; no sorting


def test_variant_override_applies_only_if_the_variant_exists() -> None:
    filters = {
        "groups": [_condition(100, _plan("pro"), variant="v1"), _condition(100, variant="nope")],
        "multivariate": _variants(100, 0),
        "payloads": {"v0": '"zero"', "v1": '"one"'},
    }
    pro = evaluate_flag(_flag(filters), "u", person_properties={"plan": "pro"})
    other = evaluate_flag(_flag(filters), "u", person_properties={"plan": "free"})
    assert (pro.variant, pro.payload, pro.value) == ("v1", '"one"', "v1")
    assert (other.variant, other.payload, other.condition_index) == ("v0", '"zero"', 1)


def test_split_below_100_leaves_some_users_enabled_without_a_variant() -> None:
    flag = _flag({"groups": [_condition()], "multivariate": _variants(30, 20), "payloads": {"true": "7"}})
    results = [evaluate_flag(flag, i) for i in IDS]
    assert all(r.enabled for r in results)
    plain = [r for r in results if r.variant is None]
    assert plain and all(r.value is True and r.payload == "7" for r in plain)
    assert {r.variant for r in results} == {None, "v0", "v1"}
    assert all(
        (r.variant is None) == (hash_fraction("flag", i, "variant") >= 0.5)
        for r, i in zip(results, IDS, strict=True)
    )


def test_non_string_payloads_are_serialised() -> None:
    flag = _flag({"groups": [_condition()], "payloads": {"true": {"a": [1, 2]}}})
    assert evaluate_flag(flag, "u").payload == '{"a": [1, 2]}'


def test_holdout() -> None:
    base = {"groups": [_condition()], "multivariate": _variants(50, 50), "payloads": {"holdout-9": '"held"'}}
    everyone = evaluate_flag(_flag({**base, "holdout": {"id": 9, "exclusion_percentage": 100}}), "u")
    assert (everyone.enabled, everyone.variant, everyone.reason_code, everyone.condition_index) == (
        True,
        "holdout-9",
        ReasonCode.HOLDOUT_CONDITION_VALUE,
        None,
    )
    assert (everyone.description, everyone.payload) == ("Holdout condition value", '"held"')
    quarter = _flag({**base, "holdout": {"id": 9, "exclusion_percentage": 25}})
    for distinct_id in IDS:
        held = evaluate_flag(quarter, distinct_id).variant == "holdout-9"
        assert held is (holdout_fraction(distinct_id) <= 0.25)
    nobody = _flag({**base, "holdout": {"id": 9, "exclusion_percentage": -5}})  # clamped to 0
    assert all(evaluate_flag(nobody, i).variant != "holdout-9" for i in IDS)
    assert evaluate_flag(_flag({**base, "holdout": {"id": 9}}), "u").reason_code is ReasonCode.CONDITION_MATCH


def test_group_flag_buckets_by_group_key() -> None:
    filters = {
        "aggregation_group_type_index": 0,
        "groups": [_condition(50, _plan("pro", type="group", group_type_index=0))],
    }
    flag = _flag(filters)
    results = {
        evaluate_flag(
            flag,
            distinct_id,
            groups={"company": "acme"},
            group_properties={"company": {"plan": "pro"}},
            group_type_mapping=MAPPING,
        ).enabled
        for distinct_id in IDS
    }
    assert results == {hash_fraction("flag", "acme") <= 0.5}
    free = evaluate_flag(
        flag,
        "u",
        groups={"company": "acme"},
        group_properties={"company": {"plan": "free"}},
        group_type_mapping=MAPPING,
    )
    assert free.reason_code is ReasonCode.NO_CONDITION_MATCH


@pytest.mark.parametrize(
    ("groups", "mapping"),
    [({}, MAPPING), ({"company": ""}, MAPPING), ({"company": "acme"}, {}), ({"other": "x"}, MAPPING)],
)
def test_group_flag_without_its_group_is_no_group_type(
    groups: dict[str, Any], mapping: dict[str, str]
) -> None:
    flag = _flag({"aggregation_group_type_index": 0, "groups": [_condition()]})
    result = evaluate_flag(flag, "u", groups=groups, group_type_mapping=mapping)
    assert (result.enabled, result.reason_code, result.condition_index, result.description) == (
        False,
        ReasonCode.NO_GROUP_TYPE,
        None,
        "No group type",
    )


def test_group_key_is_a_matchable_property_and_numbers_are_keys() -> None:
    prop = {"key": "$group_key", "operator": "exact", "value": "42", "type": "group", "group_type_index": 0}
    flag = _flag({"aggregation_group_type_index": 0, "groups": [_condition(100, prop)]})
    assert evaluate_flag(flag, "u", groups={"company": 42}, group_type_mapping=MAPPING).enabled


def test_condition_level_group_aggregation() -> None:
    group_condition = _condition(100, aggregation_group_type_index=0)
    flag = _flag({"groups": [_condition(100, _plan("pro")), group_condition]})
    without = evaluate_flag(flag, "u", person_properties={"plan": "free"}, group_type_mapping=MAPPING)
    assert (without.reason_code, without.condition_index) == (ReasonCode.NO_GROUP_TYPE, 1)
    with_group = evaluate_flag(
        flag, "u", person_properties={"plan": "free"}, groups={"company": "acme"}, group_type_mapping=MAPPING
    )
    assert (with_group.enabled, with_group.condition_index) == (True, 1)


def test_early_exit_stops_at_the_first_rollout_miss() -> None:
    conditions = [_condition(0), _condition(100)]
    assert evaluate_flag(_flag({"groups": conditions}), "u").enabled
    stopped = evaluate_flag(_flag({"groups": conditions, "early_exit": True}), "u")
    assert (stopped.enabled, stopped.reason_code, stopped.condition_index) == (
        False,
        ReasonCode.OUT_OF_ROLLOUT_BOUND,
        0,
    )


def test_feature_enrollment() -> None:
    flag = _flag(
        {"groups": [_condition(0)], "feature_enrollment": True, "payloads": {"true": "1"}}, key="beta"
    )
    enrolled = evaluate_flag(flag, "u", person_properties={"$feature_enrollment/beta": "true"})
    assert (enrolled.enabled, enrolled.reason_code, enrolled.condition_index, enrolled.description) == (
        True,
        ReasonCode.SUPER_CONDITION_VALUE,
        0,
        "Super condition value",
    )
    assert enrolled.payload == "1"
    opted_out = evaluate_flag(flag, "u", person_properties={"$feature_enrollment/beta": False})
    assert (opted_out.enabled, opted_out.reason_code) == (False, ReasonCode.SUPER_CONDITION_VALUE)
    assert evaluate_flag(flag, "u").reason_code is ReasonCode.OUT_OF_ROLLOUT_BOUND  # falls through


def test_legacy_super_groups() -> None:
    prop = {"key": "$feature_enrollment/beta", "operator": "exact", "value": ["true"], "type": "person"}
    flag = _flag({"groups": [_condition(0)], "super_groups": [_condition(100, prop)]}, key="beta")
    assert evaluate_flag(flag, "u", person_properties={"$feature_enrollment/beta": True}).enabled
    declined = evaluate_flag(flag, "u", person_properties={"$feature_enrollment/beta": False})
    assert (declined.enabled, declined.reason_code) == (False, ReasonCode.SUPER_CONDITION_VALUE)
    assert evaluate_flag(flag, "u").reason_code is ReasonCode.OUT_OF_ROLLOUT_BOUND


def test_device_id_bucketing() -> None:
    flag = _flag({"groups": [_condition(50)]}, bucketing_identifier="device_id")
    device = _first_id(lambda i: hash_fraction("flag", i) <= 0.5)
    person = _first_id(lambda i: hash_fraction("flag", i) > 0.5)
    assert evaluate_flag(flag, person, device_id=device).enabled
    missing = evaluate_flag(flag, device)
    assert (missing.enabled, missing.reason_code) == (False, ReasonCode.OUT_OF_ROLLOUT_BOUND)


def test_missing_properties_are_inconclusive_not_matching() -> None:
    flag = _flag({"groups": [_condition(100, _plan("pro"))]})
    unknown = evaluate_flag(flag, "u")
    assert (unknown.enabled, unknown.reason_code, unknown.inconclusive) == (
        False,
        ReasonCode.NO_CONDITION_MATCH,
        True,
    )
    assert not evaluate_flag(flag, "u", person_properties={"plan": "free"}).inconclusive
    rescued = _flag({"groups": [_condition(100, _plan("pro")), _condition(100)]})
    assert evaluate_flag(rescued, "u").enabled and not evaluate_flag(rescued, "u").inconclusive
    cohort = _flag({"groups": [_condition(100, {"key": "id", "type": "cohort", "value": 3})]})
    assert evaluate_flag(cohort, "u").inconclusive


def test_distinct_id_is_a_person_property() -> None:
    prop = {"key": "distinct_id", "operator": "icontains", "value": "@corp"}
    flag = _flag({"groups": [_condition(100, prop)]})
    assert evaluate_flag(flag, "ann@corp.com").enabled
    assert not evaluate_flag(flag, "ann@corp.com", person_properties={"distinct_id": "other"}).enabled


def test_evaluate_flags_skips_inactive_and_filters_keys() -> None:
    flags: list[FlagDefinition | CompiledFlag] = [
        _flag({"groups": [_condition()]}, key="a"),
        _flag({"groups": [_condition()]}, key="b", active=False),
        _flag({"groups": [_condition()]}, key="c", deleted=True),
        _flag({"groups": [_condition(0)]}, key="d").compiled,
    ]
    results = evaluate_flags(flags, "u")
    assert list(results) == ["a", "d"]
    assert (results["a"].enabled, results["d"].enabled) == (True, False)
    assert list(evaluate_flags(flags, "u", flag_keys=["d", "b", "zz"])) == ["d"]
    assert evaluate_flags(flags, "u", flag_keys=[]) == {}


def test_definition_maps_from_a_row_and_compiles_once() -> None:
    row = {
        "id": "7",
        "key": "k",
        "filters": None,
        "active": True,
        "version": 3,
        "name": "ignored",
        "team_id": 1,
    }
    definition = FlagDefinition.from_mapping(row)
    assert (definition.id, definition.key, dict(definition.filters), definition.version) == (7, "k", {}, 3)
    assert definition.compiled is definition.compiled
    assert isinstance(definition.compiled, CompiledFlag)
    assert evaluate_flag(definition, "u").reason_code is ReasonCode.NO_CONDITION_MATCH


def test_results_are_shared_per_outcome() -> None:
    flag = _flag({"groups": [_condition()], "multivariate": _variants(100)})
    assert evaluate_flag(flag, "a") is evaluate_flag(flag, "b")
