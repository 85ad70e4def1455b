"""`duplicate/` and `copy_to_project/`: what is copied, names, flag reuse, and the plain-body errors."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from db.engine import make_async_engine, make_sessionmaker
from db.tables import Experiment
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment, handle
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")

METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
VARIANTS = [
    {"key": "control", "rollout_percentage": 34},
    {"key": "a", "rollout_percentage": 33},
    {"key": "b", "rollout_percentage": 33},
]


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def rich_source(api: ApiClient) -> dict[str, Any]:
    holdout = await api.post(
        api.project("experiment_holdouts/"),
        {"name": "H", "filters": [{"properties": [], "rollout_percentage": 5}]},
    )
    saved = await api.post(api.project("experiment_saved_metrics/"), {"name": "Saved", "query": METRIC})
    exp = await create_experiment(
        api,
        description="The original",
        parameters={"feature_flag_variants": VARIANTS, "minimum_detectable_effect": 5},
        metrics=[METRIC, METRIC | {"name": "second"}],
        metrics_secondary=[METRIC | {"name": "secondary"}],
        stats_config={"method": "frequentist"},
        scheduling_config={"timezone": "UTC"},
        exposure_criteria={"filterTestAccounts": False},
        only_count_matured_users=True,
        holdout_id=holdout.json()["id"],
        saved_metrics_ids=[{"id": saved.json()["id"], "metadata": {"type": "secondary"}}],
    )
    for step in ("launch", "end"):
        assert (
            await action(api, exp["id"], step, {"conclusion": "won"} if step == "end" else None)
        ).status_code == 200
    return exp


async def test_duplicate_copies_definition_not_state(api: ApiClient, temporal_client: Client) -> None:
    source = await rich_source(api)
    r = await action(api, source["id"], "duplicate")
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["name"] == "Checkout test (Copy)" and copy["id"] != source["id"]
    assert copy["feature_flag"]["id"] == source["feature_flag"]["id"]  # same key: the flag is shared
    for field in ("description", "type", "parameters", "filters", "stats_config", "scheduling_config"):
        assert copy[field] == source[field], field
    assert (
        copy["exposure_criteria"] == {"filterTestAccounts": False}
        and copy["only_count_matured_users"] is True
    )
    assert (copy["status"], copy["start_date"], copy["end_date"]) == ("draft", None, None)
    assert (copy["conclusion"], copy["archived"], copy["holdout_id"], copy["exposure_cohort"]) == (
        None,
        False,
        None,
        None,
    )
    source_uuids = {m["uuid"] for m in source["metrics"] + source["metrics_secondary"]}
    copy_uuids = [m["uuid"] for m in copy["metrics"]]
    assert not source_uuids & set(copy_uuids) and len(set(copy_uuids)) == 2
    assert [m.get("name") for m in copy["metrics"]] == [None, "second"]
    saved_uuid = source["saved_metrics"][0]["query"]["uuid"]
    assert copy["primary_metrics_ordered_uuids"] == copy_uuids
    assert copy["secondary_metrics_ordered_uuids"] == [copy["metrics_secondary"][0]["uuid"], saved_uuid]
    assert [(m["saved_metric"], m["metadata"]) for m in copy["saved_metrics"]] == [
        (source["saved_metrics"][0]["saved_metric"], {"type": "secondary"})
    ]
    description = await handle(temporal_client, api.project_id, copy["id"]).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING  # created by its own workflow

    names = [(await action(api, source["id"], "duplicate")).json()["name"] for _ in range(2)]
    assert names == ["Checkout test (Copy) 1", "Checkout test (Copy) 2"]
    r = await action(api, source["id"], "duplicate", {"name": "Named copy"})
    assert r.status_code == 201 and r.json()["name"] == "Named copy"


async def test_duplicate_flag_choices(api: ApiClient) -> None:
    source = await create_experiment(api, parameters={"feature_flag_variants": VARIANTS})
    r = await action(api, source["id"], "duplicate", {"feature_flag_key": "fresh-key"})
    assert r.status_code == 201, r.text
    flag = r.json()["feature_flag"]
    assert (
        flag["key"] == "fresh-key" and flag["active"] is False and flag["id"] != source["feature_flag"]["id"]
    )
    assert flag["filters"]["multivariate"]["variants"] == VARIANTS

    other = await create_experiment(api, name="Other", feature_flag_key="two-way")
    r = await action(api, source["id"], "duplicate", {"feature_flag_key": "two-way"})
    assert r.status_code == 201
    assert r.json()["feature_flag"]["id"] == other["feature_flag"]["id"]
    variants = other["feature_flag"]["filters"]["multivariate"]["variants"]
    assert [v["key"] for v in r.json()["parameters"]["feature_flag_variants"]] == [v["key"] for v in variants]

    before = (await api.get(api.project("experiments/"))).json()["count"]
    r = await action(api, source["id"], "duplicate", {"feature_flag_key": ""})
    assert r.status_code == 400 and r.json() == bad("This field may not be blank.", "key", "blank")
    assert (await api.get(api.project("experiments/"))).json()["count"] == before


async def make_legacy(settings: Settings, experiment_id: int) -> None:
    """Legacy metrics cannot be created through the API any more; old rows still carry them."""
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            row = await session.get(Experiment, experiment_id)
            assert row is not None
            row.metrics = [
                {"kind": "ExperimentTrendsQuery", "count_query": {"kind": "TrendsQuery", "series": []}}
            ]
            session.add(row)
            await session.commit()
    finally:
        await engine.dispose()


async def test_legacy_sources_are_refused_with_plain_bodies(api: ApiClient, settings: Settings) -> None:
    source = await create_experiment(api)
    await make_legacy(settings, source["id"])
    r = await action(api, source["id"], "duplicate")
    assert r.status_code == 400
    assert r.json() == {"detail": "Duplication is not supported for experiments using legacy metrics."}
    r = await action(api, source["id"], "copy_to_project", {"target_team_id": api.project_id})
    assert r.status_code == 400
    assert r.json() == {"detail": "Copying is not supported for experiments using legacy metrics."}


async def test_copy_to_project(api: ApiClient) -> None:
    source = await rich_source(api)
    target = await other_project(api)
    r = await action(api, source["id"], "copy_to_project", {"target_team_id": target})
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["name"] == "Checkout test (Copy)" and copy["feature_flag"]["team_id"] == target
    assert copy["feature_flag"]["key"] == "checkout-test" and copy["feature_flag"]["active"] is False
    assert copy["saved_metrics"] == [] and copy["holdout_id"] is None
    assert copy["parameters"] == source["parameters"]
    got = await api.get(in_project(api, target, f"experiments/{copy['id']}/"))
    assert got.status_code == 200 and got.json()["id"] == copy["id"]
    assert (await api.get(api.project(f"experiments/{copy['id']}/"))).status_code == 404

    again = await action(api, source["id"], "copy_to_project", {"target_team_id": target, "name": "Again"})
    assert again.status_code == 201
    assert (
        again.json()["name"] == "Again" and again.json()["feature_flag"]["id"] == copy["feature_flag"]["id"]
    )
    variants = again.json()["parameters"]["feature_flag_variants"]  # the target flag's variants
    assert [{k: v[k] for k in ("key", "rollout_percentage")} for v in variants] == VARIANTS


async def test_copy_to_project_errors(api: ApiClient) -> None:
    source = await create_experiment(api)
    eid = source["id"]
    r = await action(api, eid, "copy_to_project", {})
    assert r.status_code == 400 and r.json() == bad("This field is required.", "target_team_id", "required")
    r = await action(api, eid, "copy_to_project", {"target_team_id": "abc"})
    assert r.status_code == 400 and r.json() == bad("A valid integer is required.", "target_team_id")
    r = await action(api, eid, "copy_to_project", {"target_team_id": 987654})
    assert r.status_code == 404 and r.json() == {"detail": "Target team not found."}
    target = await other_project(api)
    scoped = await scoped_key(api, "experiment:write", scoped_teams=[api.project_id])
    r = await action(api, eid, "copy_to_project", {"target_team_id": target}, key=scoped)
    assert r.status_code == 403 and r.json() == {
        "detail": "You do not have write access to the target project."
    }
    reader = await scoped_key(api, "experiment:read")
    for name, body in (("duplicate", None), ("copy_to_project", {"target_team_id": target})):
        r = await action(api, eid, name, body, key=reader)
        assert (
            r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:write'"
        )
    r = await api.post(in_project(api, target, f"experiments/{eid}/duplicate/"))
    assert r.status_code == 404  # another project's experiment is not found there
