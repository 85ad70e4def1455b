"""`scheduling_config.autopilot` through the API: checked on create and PATCH with clear 400s
(`attr` scheduling_config), shown in the representation with the next evaluation, remapped by
duplicate, and `…/evaluate_rules/` refused where there is nothing to evaluate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment

pytestmark = pytest.mark.usefixtures("worker")

WIN = "33333333-3333-4333-8333-333333333333"
METRIC = {
    "kind": "ExperimentMetric",
    "uuid": WIN,
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "buy"},
}


def error(detail: str) -> dict[str, Any]:
    return {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": detail,
        "attr": "scheduling_config",
    }


async def test_rules_are_checked_on_create_and_patch(api: ApiClient) -> None:
    bad = await api.post(
        api.project("experiments/"),
        {"name": "x", "feature_flag_key": "x", "metrics": [METRIC], "allow_unknown_events": True,
         "scheduling_config": {"autopilot": {"guardrails": [{"metric": "missing"}]}}},
    )  # fmt: skip
    assert bad.status_code == 400
    assert bad.json() == error(
        "scheduling_config.autopilot.guardrails[0].metric names metric 'missing', which this experiment does not have."
    )
    rules = {"guardrails": [{"metric": WIN, "max_regression": 0.02}], "check_every_hours": 6}
    exp = await create_experiment(api, metrics=[METRIC], scheduling_config={"autopilot": rules})
    assert exp["scheduling_config"]["autopilot"] == rules
    url = api.project(f"experiments/{exp['id']}/")
    negative = {"autopilot": {"guardrails": [{"metric": WIN, "max_regression": -0.1}]}}
    r = await api.patch(url, {"scheduling_config": negative})
    assert r.status_code == 400 and r.json() == error(
        "scheduling_config.autopilot.guardrails[0].max_regression must be a number from 0 to 1."
    )
    r = await api.patch(url, {"metrics": []})
    assert r.status_code == 400 and r.json() == error(
        f"This change removes metric '{WIN}', which scheduling_config.autopilot uses. Change or remove the rule first."
    )


async def test_the_next_evaluation_is_a_scheduled_action(api: ApiClient) -> None:
    exp = await create_experiment(api, metrics=[METRIC], scheduling_config={"autopilot": {"srm": {}}})
    assert exp["scheduled_actions"] == []  # a draft is not evaluated
    launched = (await action(api, exp["id"], "launch")).json()
    [evaluation] = launched["scheduled_actions"]
    assert evaluation["action"] == "evaluate_rules" and evaluation["at"] > launched["start_date"]


async def test_duplicate_remaps_the_rules_to_the_copys_metrics(api: ApiClient) -> None:
    rules = {"stop_when_significant": {"metric": WIN, "min_days": 3}}
    exp = await create_experiment(api, metrics=[METRIC], scheduling_config={"autopilot": rules})
    copy = await api.post(
        api.project(f"experiments/{exp['id']}/duplicate/"), {"feature_flag_key": "copy-flag"}
    )
    assert copy.status_code == 201, copy.text
    new_uuid = copy.json()["metrics"][0]["uuid"]
    assert new_uuid != WIN
    assert copy.json()["scheduling_config"]["autopilot"] == {
        "stop_when_significant": {"metric": new_uuid, "min_days": 3}
    }


async def test_evaluate_rules_needs_rules_and_a_running_experiment(api: ApiClient) -> None:
    plain = await create_experiment(api, metrics=[METRIC])
    r = await action(api, plain["id"], "evaluate_rules")
    assert r.status_code == 400 and r.json() == error(
        "This experiment has no autopilot rules: set scheduling_config.autopilot first."
    )
    ruled = await create_experiment(
        api, feature_flag_key="ruled", metrics=[METRIC], scheduling_config={"autopilot": {"srm": {}}}
    )
    r = await action(api, ruled["id"], "evaluate_rules")
    assert r.status_code == 400
    assert r.json()["detail"] == "The autopilot evaluates running experiments only; this one is draft."
