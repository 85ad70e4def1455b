"""Flagship's evaluation against the official posthog-python 7.91.1 local evaluation, 10,000 identities.

The SDK is driven through its public `get_feature_flag(..., only_evaluate_locally=True)`, so it applies its
own context handling (`distinct_id` / `$group_key` properties, group flags) exactly as an app would. Where it
returns None it could not decide (a property was not sent) and Flagship must then report an inconclusive
`False`; everywhere else the two must agree on every value.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from posthog import Posthog

from domain.flag_evaluation import FlagDefinition, evaluate_flag

GROUP_TYPE_MAPPING = {"0": "company", "1": "team"}
IDENTITIES = 10_000


def _rollout(p: float | None) -> dict[str, Any]:
    return {"groups": [{"properties": [], "rollout_percentage": p}]}


def _variants(*split: float) -> dict[str, Any]:
    return {"variants": [{"key": f"v{i}", "rollout_percentage": p} for i, p in enumerate(split)]}


def _prop(key: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    return {"key": key, "operator": operator, "value": value, "type": "person", **extra}


def _split_filters() -> dict[str, dict[str, Any]]:
    return {
        **{f"rollout-{p}": _rollout(p) for p in (0, 1, 33, 45, 50, 99.9, 100, None)},
        "mv-50-50": {**_rollout(100), "multivariate": _variants(50, 50)},
        "mv-33-33-34": {**_rollout(100), "multivariate": _variants(33, 33, 34)},
        "mv-50-20-20-5-5": {**_rollout(70), "multivariate": _variants(50, 20, 20, 5, 5)},
        "mv-under-100": {**_rollout(100), "multivariate": _variants(30, 30, 20.5)},
        "mv-7-decimal": {**_rollout(100), "multivariate": _variants(*[100 / 7] * 7)},
        "mv-20": {**_rollout(88.8), "multivariate": _variants(*[5] * 20)},
        "holdout": {
            **_rollout(100),
            "multivariate": _variants(50, 50),
            "holdout": {"id": 3, "exclusion_percentage": 25},
        },
        "no-conditions": {"groups": []},
    }


def _condition_filters() -> dict[str, dict[str, Any]]:
    return {
        "conditions": {
            "groups": [
                {"properties": [_prop("email", "icontains", "@example.com")], "rollout_percentage": 40},
                {"properties": [_prop("plan", "exact", ["pro", "enterprise"])], "rollout_percentage": 80},
                {
                    "properties": [_prop("age", "gte", 30), _prop("plan", "is_not", "free")],
                    "rollout_percentage": 50,
                },
            ],
            "multivariate": _variants(50, 50),
        },
        "override-after-catch-all": {
            "groups": [
                {"properties": [], "rollout_percentage": 50},
                {"properties": [_prop("country", "exact", "DE")], "rollout_percentage": 100, "variant": "v1"},
            ],
            "multivariate": _variants(50, 50),
        },
        "override-first": {
            "groups": [
                {"properties": [_prop("country", "exact", ["DE", "FR"])], "variant": "v2"},
                {"properties": [], "rollout_percentage": 60, "variant": "missing-variant"},
            ],
            "multivariate": _variants(34, 33, 33),
        },
        "early-exit": {
            "early_exit": True,
            "groups": [
                {"properties": [], "rollout_percentage": 30},
                {"properties": [_prop("plan", "is_set")]},
            ],
        },
    }


def _group_and_operator_filters() -> dict[str, dict[str, Any]]:
    company_plan = _prop("plan", "exact", ["pro"], type="group", group_type_index=0)
    return {
        "group-flag": {
            "aggregation_group_type_index": 0,
            "groups": [
                {"properties": [company_plan], "rollout_percentage": 60},
                {"properties": [], "rollout_percentage": 10},
            ],
            "multivariate": _variants(50, 50),
        },
        "group-rollout": {"aggregation_group_type_index": 1, **_rollout(45)},
        "holdout": {
            **_rollout(100),
            "multivariate": _variants(50, 50),
            "holdout": {"id": 3, "exclusion_percentage": 25},
        },
        "early-exit": {
            "early_exit": True,
            "groups": [
                {"properties": [], "rollout_percentage": 30},
                {"properties": [_prop("plan", "is_set")]},
            ],
        },
        "operators": {
            "groups": [
                {"properties": [_prop("email", "regex", r"^user-\d*7@example\.com$")]},
                {"properties": [_prop("age", "lt", "20"), _prop("name", "not_icontains", "BOT")]},
                {"properties": [_prop("signup", "is_date_after", "-30d")], "rollout_percentage": 70},
                {"properties": [_prop("signup", "is_date_before", "2025-01-01")]},
                {"properties": [_prop("app_version", "semver_gte", "2.1.0")], "rollout_percentage": 50},
                {"properties": [_prop("beta", "exact", ["true"]), _prop("email", "not_regex", "test")]},
            ]
        },
    }


def _flag_filters() -> dict[str, dict[str, Any]]:
    return {**_split_filters(), **_condition_filters(), **_group_and_operator_filters()}


def _definitions() -> list[dict[str, Any]]:
    return [
        {"id": i, "key": key, "filters": filters, "active": True, "deleted": False, "version": 1}
        for i, (key, filters) in enumerate(_flag_filters().items(), start=1)
    ]


def _identity(rng: random.Random, i: int) -> str:
    kind = i % 5
    if kind == 0:
        return f"user-{i}"
    if kind == 1:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 2:
        return str(rng.randint(0, 10**15))
    if kind == 3:
        return rng.choice(["ユーザー", "ñandú", "пользователь", "🦔", "Ωmega"]) + f"-{i}"
    return "x" * rng.randint(200, 260) + str(i)


def _sometimes(rng: random.Random, props: dict[str, Any], key: str, choices: list[Any]) -> None:
    # Leaving a property out makes the SDK undecided for conditions that need it.
    if rng.random() < 0.85:
        props[key] = rng.choice(choices)


def _person(rng: random.Random, i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    # Half a day off the relative boundary so the SDK's and our clocks cannot disagree.
    signup = now - timedelta(days=rng.choice([3, 29, 31, 400, 900]) + 0.5)
    props: dict[str, Any] = {}
    _sometimes(rng, props, "email", [f"user-{i}@example.com", f"user-{i}@EXAMPLE.com", f"u{i}@test.io"])
    _sometimes(rng, props, "plan", ["free", "pro", "enterprise", "Pro", None])
    _sometimes(
        rng, props, "age", [rng.randint(10, 70), str(rng.randint(10, 70)), rng.random() * 80, "abc", True]
    )
    _sometimes(rng, props, "country", ["DE", "de", "FR", "US", ["DE"]])
    _sometimes(rng, props, "signup", [signup.isoformat(), signup.strftime("%Y-%m-%d"), "not a date"])
    _sometimes(rng, props, "name", ["Alice", "robot", "BoTtom", 42])
    _sometimes(rng, props, "app_version", ["2.0.9", "2.1.0", "v2.10.1", "1.9", "2.01.0", "3"])
    _sometimes(rng, props, "beta", [True, "true", "TRUE", "false", False, 1])
    return props


def _groups(rng: random.Random, i: int) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    groups: dict[str, Any] = {}
    group_props: dict[str, dict[str, Any]] = {}
    if rng.random() < 0.8:
        groups["company"] = f"company-{i % 700}"
        if rng.random() < 0.9:
            group_props["company"] = {"plan": rng.choice(["pro", "free", "PRO"])}
    if rng.random() < 0.7:
        groups["team"] = rng.choice([f"team-{i}", i])
    return groups, group_props


@pytest.fixture(scope="module")
def sdk() -> Iterator[Posthog]:
    client = Posthog("phc_oracle", host="http://127.0.0.1:9", sync_mode=True)
    client.feature_flags = _definitions()
    client.group_type_mapping = GROUP_TYPE_MAPPING
    logger = logging.getLogger("posthog")
    level = logger.level
    # The SDK warns on every group flag read without groups; tens of thousands of records add nothing.
    logger.setLevel(logging.ERROR)
    yield client
    logger.setLevel(level)
    client.shutdown()


def _sdk_value(sdk: Posthog, key: str, distinct_id: str, context: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        # get_feature_flag is deprecated in 7.91 in favour of evaluate_flags(); it is still the local path.
        warnings.simplefilter("ignore", DeprecationWarning)
        return sdk.get_feature_flag(
            key, distinct_id, only_evaluate_locally=True, send_feature_flag_events=False, **context
        )


def test_matches_sdk_local_evaluation_for_10000_identities(sdk: Posthog) -> None:
    rng = random.Random(20251201)
    definitions = [FlagDefinition.from_mapping(row) for row in _definitions()]
    compared = undecided = 0
    mismatches: list[tuple[str, str, Any, Any]] = []
    for i in range(IDENTITIES):
        distinct_id = _identity(rng, i)
        groups, group_props = _groups(rng, i)
        context: dict[str, Any] = {
            "person_properties": _person(rng, i),
            "groups": groups,
            "group_properties": group_props,
        }
        for definition in definitions:
            expected = _sdk_value(sdk, definition.key, distinct_id, context)
            ours = evaluate_flag(definition, distinct_id, group_type_mapping=GROUP_TYPE_MAPPING, **context)
            if expected is None:
                undecided += 1
                if ours.enabled or not ours.inconclusive:
                    mismatches.append((definition.key, distinct_id, "undecided", ours))
                continue
            compared += 1
            if ours.value != expected or ours.inconclusive:
                mismatches.append((definition.key, distinct_id, expected, ours))
    assert mismatches == []
    # The spread must really exercise both outcomes and the undecided path.
    assert compared > 200_000 and undecided > 5_000


def test_payloads_match_sdk(sdk: Posthog) -> None:
    filters = {**_rollout(80), "multivariate": _variants(50, 50), "payloads": {"v0": '{"a": 1}', "v1": "[2]"}}
    row = {"id": 99, "key": "payload-flag", "filters": filters, "active": True}
    sdk.feature_flags = [*_definitions(), row]
    definition = FlagDefinition.from_mapping(row)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            for i in range(300):
                ours = evaluate_flag(definition, f"user-{i}")
                expected = sdk.get_feature_flag_payload(
                    "payload-flag", f"user-{i}", match_value=ours.value, only_evaluate_locally=True
                )
                assert (None if ours.payload is None else json.loads(ours.payload)) == expected
    finally:
        sdk.feature_flags = _definitions()


def _random_flag(rng: random.Random, index: int) -> dict[str, Any]:
    count = rng.randint(2, 20)
    weights = [rng.random() for _ in range(count)]
    scale = sum(weights) / rng.choice([100, 100, 99.5, 70])
    split = [round(w / scale, rng.choice([0, 1, 2, 3])) for w in weights]
    rollout = rng.choice([rng.uniform(0, 100), round(rng.uniform(0, 100), 1), rng.randint(0, 100)])
    key = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-_0123456789") for _ in range(rng.randint(1, 30)))
    filters = {**_rollout(rollout), "multivariate": _variants(*split)}
    return {"id": 1000 + index, "key": f"{key}-{index}", "filters": filters, "active": True}


def test_random_splits_and_rollouts_match_sdk(sdk: Posthog) -> None:
    # Decimal percentages and 2-20 variants: catches float accumulation and `<=` vs `<` slips.
    rng = random.Random(7)
    rows = [_random_flag(rng, i) for i in range(200)]
    sdk.feature_flags = rows
    try:
        for row in rows:
            definition = FlagDefinition.from_mapping(row)
            for i in range(150):
                distinct_id = _identity(rng, i)
                expected = _sdk_value(sdk, definition.key, distinct_id, {})
                assert evaluate_flag(definition, distinct_id).value == expected, (row, distinct_id)
    finally:
        sdk.feature_flags = _definitions()
