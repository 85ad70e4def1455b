"""ship_variant: PostHog's preconditions, messages and flag rewrite (reference §4.6 and §5)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment

pytestmark = pytest.mark.usefixtures("worker")

VARIANTS = [
    {"key": "control", "rollout_percentage": 50},
    {"key": "test", "name": "Test", "rollout_percentage": 50},
]
CATCH_ALL = {
    "properties": [],
    "rollout_percentage": 100,
    "description": "Added automatically when the experiment was ended to keep only one variant.",
}


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def launched(api: ApiClient) -> dict[str, Any]:
    exp = await create_experiment(api, parameters={"feature_flag_variants": VARIANTS})
    assert (await action(api, exp["id"], "launch")).status_code == 200
    return exp


async def test_ship_rewrites_flag_and_ends(api: ApiClient) -> None:
    exp = await launched(api)
    before = exp["feature_flag"]["filters"]
    r = await action(api, exp["id"], "ship_variant", {"variant_key": "test"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "stopped" and body["end_date"] is not None
    assert body["conclusion"] is None  # only set when provided
    assert body["feature_flag"]["active"] is True  # ship leaves `active` alone
    assert body["feature_flag"]["filters"] == {
        "aggregation_group_type_index": None,
        "payloads": {},
        "multivariate": {
            "variants": [
                {"key": "control", "rollout_percentage": 0},
                {"key": "test", "rollout_percentage": 100, "name": "Test"},
            ]
        },
        "groups": before["groups"],
    }


async def test_ship_release_to_everyone_prepends_catch_all(api: ApiClient) -> None:
    exp = await launched(api)
    r = await action(
        api,
        exp["id"],
        "ship_variant",
        {
            "variant_key": "control",
            "release_to_everyone": True,
            "conclusion": "lost",
            "conclusion_comment": "no lift",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["feature_flag"]["filters"]["groups"][0] == CATCH_ALL
    assert body["feature_flag"]["filters"]["groups"][1:] == exp["feature_flag"]["filters"]["groups"]
    assert body["conclusion"] == "lost" and body["conclusion_comment"] == "no lift"


async def test_ship_on_stopped_keeps_end_date(api: ApiClient) -> None:
    exp = await launched(api)
    ended = (await action(api, exp["id"], "end", {"conclusion": "won"})).json()
    r = await action(api, exp["id"], "ship_variant", {"variant_key": "test"})
    assert r.status_code == 200
    assert r.json()["end_date"] == ended["end_date"]
    assert r.json()["conclusion"] == "won"


@pytest.mark.parametrize(
    ("launch", "body", "expected"),
    [
        (True, {}, bad("This field is required.", "variant_key", "required")),
        (False, {"variant_key": "test"}, bad("Experiment has not been launched yet.")),
        (True, {"variant_key": "nope"}, bad("Variant 'nope' not found on feature flag.")),
        (
            True,
            {"variant_key": "test", "conclusion": "meh"},
            bad('"meh" is not a valid choice.', "conclusion", "invalid_choice"),
        ),
    ],
)
async def test_ship_messages(
    api: ApiClient, launch: bool, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    exp = await create_experiment(api, parameters={"feature_flag_variants": VARIANTS})
    if launch:
        assert (await action(api, exp["id"], "launch")).status_code == 200
    r = await action(api, exp["id"], "ship_variant", body)
    assert r.status_code == 400
    assert r.json() == expected
