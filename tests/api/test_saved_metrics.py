"""Saved metrics CRUD, and experiments linking them (create, PATCH link sync, delete unlinks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from domain.fingerprint import compute_metric_fingerprint
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")

QUERY = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
INLINE = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "click"},
}


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def make_metric(api: ApiClient, name: str = "Purchases", **overrides: Any) -> dict[str, Any]:
    r = await api.post(api.project("experiment_saved_metrics/"), {"name": name, "query": QUERY} | overrides)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_crud_and_representation(api: ApiClient) -> None:
    metric = await make_metric(api, description="All purchases", tags=["revenue"])
    assert set(metric) == {
        "id", "name", "description", "query", "created_by", "created_at", "updated_at", "tags", "user_access_level",
    }  # fmt: skip
    assert metric["query"]["uuid"] and metric["tags"] == ["revenue"]
    assert {k: v for k, v in metric["query"].items() if k != "uuid"} == QUERY
    kept = await make_metric(api, name="apples", query=QUERY | {"uuid": "client-uuid"})
    assert kept["query"]["uuid"] == "client-uuid"
    await make_metric(api, name="Zebra")
    names = [m["name"] for m in (await api.get(api.project("experiment_saved_metrics/"))).json()["results"]]
    assert names == ["apples", "Purchases", "Zebra"]  # ordered by lower(name)

    path = api.project(f"experiment_saved_metrics/{metric['id']}/")
    r = await api.patch(path, {"name": "Renamed", "query": QUERY | {"metric_type": "mean"}})
    assert r.status_code == 200 and r.json()["name"] == "Renamed"
    assert r.json()["query"]["uuid"] == metric["query"]["uuid"]  # the stored uuid is kept
    r = await api.patch(path, {"query": QUERY | {"uuid": "another"}})
    assert r.status_code == 400 and r.json() == bad("Saved metric UUID cannot be changed")
    assert (await api.get(path)).json()["name"] == "Renamed"
    r = await api.delete(path)
    assert r.status_code == 204 and (await api.get(path)).status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"query": QUERY}, bad("This field is required.", "name", "required")),
        ({"name": "m"}, bad("This field is required.", "query", "required")),
        ({"name": "m", "query": None}, bad("This field may not be null.", "query", "null")),
        ({"name": "m", "query": {}}, bad("Query is required to create a saved metric")),
        (
            {"name": "m", "query": {"kind": "ExperimentTrendsQuery"}},
            bad("Legacy metric kind 'ExperimentTrendsQuery' is no longer supported for new saved metrics. Use 'ExperimentMetric' instead."),
        ),
        ({"name": "m", "query": {"kind": "TrendsQuery"}}, bad("Metric query kind must be 'ExperimentMetric'")),
        ({"name": "m", "query": {"kind": "ExperimentMetric"}}, bad("ExperimentMetric requires a metric_type")),
        (
            {"name": "m", "query": {"kind": "ExperimentMetric", "metric_type": "median"}},
            bad("ExperimentMetric metric_type must be 'mean', 'funnel', 'ratio', or 'retention'"),
        ),
        (
            {"name": "m", "query": {"kind": "ExperimentMetric", "metric_type": "mean"}},
            bad("[{'loc': ('source',), 'type': 'missing', 'msg': 'Field required'}]"),
        ),
    ],
)  # fmt: skip
async def test_create_validation(api: ApiClient, body: dict[str, Any], expected: dict[str, Any]) -> None:
    r = await api.post(api.project("experiment_saved_metrics/"), body)
    assert r.status_code == 400 and r.json() == expected


async def test_experiment_links_follow_patch_and_delete(api: ApiClient) -> None:
    primary = await make_metric(api, "Primary")
    secondary = await make_metric(api, "Secondary")
    p_uuid, s_uuid = primary["query"]["uuid"], secondary["query"]["uuid"]
    exp = await create_experiment(
        api,
        metrics=[INLINE],
        saved_metrics_ids=[{"id": primary["id"], "metadata": {"type": "primary"}}],
    )
    inline_uuid = exp["metrics"][0]["uuid"]
    assert exp["primary_metrics_ordered_uuids"] == [inline_uuid, p_uuid]
    assert [m["saved_metric"] for m in exp["saved_metrics"]] == [primary["id"]]
    # The linked query carries the fingerprint it has in this experiment (a draft: no start date),
    # the same one as an inline copy of it would get.
    query = exp["saved_metrics"][0]["query"]
    assert query["fingerprint"] == compute_metric_fingerprint(
        primary["query"], None, "bayesian", exp["exposure_criteria"], exp["only_count_matured_users"]
    )
    launched = (await action(api, exp["id"], "launch")).json()
    assert launched["saved_metrics"][0]["query"]["fingerprint"] == compute_metric_fingerprint(
        primary["query"],
        datetime.fromisoformat(launched["start_date"].replace("Z", "+00:00")),
        "bayesian",
        exp["exposure_criteria"],
        False,
    )
    await action(api, exp["id"], "reset")
    path = api.project(f"experiments/{exp['id']}/")

    links = [
        {"id": primary["id"], "metadata": {"type": "secondary"}},
        {"id": secondary["id"], "metadata": {"type": "secondary"}},
    ]
    r = await api.patch(path, {"saved_metrics_ids": links})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(m["saved_metric"], m["metadata"]) for m in body["saved_metrics"]] == [
        (link["id"], link["metadata"]) for link in links
    ]
    assert body["primary_metrics_ordered_uuids"] == [inline_uuid]
    assert body["secondary_metrics_ordered_uuids"] == [p_uuid, s_uuid]

    r = await api.patch(path, {"name": "Untouched links"})
    assert len(r.json()["saved_metrics"]) == 2  # no saved_metrics_ids: links stay

    assert (await api.delete(api.project(f"experiment_saved_metrics/{primary['id']}/"))).status_code == 204
    got = (await api.get(path)).json()
    assert [m["saved_metric"] for m in got["saved_metrics"]] == [secondary["id"]]
    assert got["secondary_metrics_ordered_uuids"] == [s_uuid]

    r = await api.patch(path, {"saved_metrics_ids": []})
    assert r.status_code == 200 and r.json()["saved_metrics"] == []
    assert r.json()["secondary_metrics_ordered_uuids"] == []


async def test_scopes(api: ApiClient) -> None:
    metric = await make_metric(api)
    reader = await scoped_key(api, "experiment:read")
    assert (
        await api.get(api.project(f"experiment_saved_metrics/{metric['id']}/"), key=reader)
    ).status_code == 200
    for r in (
        await api.post(api.project("experiment_saved_metrics/"), {"name": "m", "query": QUERY}, key=reader),
        await api.patch(api.project(f"experiment_saved_metrics/{metric['id']}/"), {"name": "m"}, key=reader),
        await api.delete(api.project(f"experiment_saved_metrics/{metric['id']}/"), key=reader),
    ):
        assert r.status_code == 403
        assert r.json()["detail"] == "API key missing required scope 'experiment:write'"


async def test_other_projects_saved_metrics_are_invisible_and_unusable(api: ApiClient) -> None:
    other = await other_project(api)
    r = await api.post(
        in_project(api, other, "experiment_saved_metrics/"), {"name": "Theirs", "query": QUERY}
    )
    assert r.status_code == 201
    theirs = r.json()["id"]
    assert (await api.get(api.project(f"experiment_saved_metrics/{theirs}/"))).status_code == 404
    assert (
        await api.patch(api.project(f"experiment_saved_metrics/{theirs}/"), {"name": "x"})
    ).status_code == 404
    assert (await api.delete(api.project(f"experiment_saved_metrics/{theirs}/"))).status_code == 404
    assert (await api.get(api.project("experiment_saved_metrics/"))).json()["count"] == 0
    r = await api.post(
        api.project("experiments/"),
        {
            "name": "x",
            "feature_flag_key": "x",
            "allow_unknown_events": True,
            "saved_metrics_ids": [{"id": theirs}],
        },
    )
    assert r.status_code == 400
    assert r.json() == bad(
        "Saved metric does not exist or does not belong to this project", "saved_metrics_ids"
    )
    exp = await create_experiment(api)
    r = await api.patch(api.project(f"experiments/{exp['id']}/"), {"saved_metrics_ids": [{"id": theirs}]})
    assert r.status_code == 400
    assert r.json() == bad(
        "Saved metric does not exist or does not belong to this project", "saved_metrics_ids"
    )
