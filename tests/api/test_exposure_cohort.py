"""`create_exposure_cohort_for_experiment` and the cohorts it creates, members read from the events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from db.bootstrap import Credentials
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from tests.support.projects import in_project, other_project, scoped_key

pytestmark = pytest.mark.usefixtures("worker")


def bad(detail: str, attr: str | None = None, code: str = "invalid_input") -> dict[str, Any]:
    return {"type": "validation_error", "code": code, "detail": detail, "attr": attr}


async def capture(
    api: ApiClient, creds: Credentials, *events: tuple[str, str, dict[str, Any], datetime]
) -> None:
    batch = [
        {
            "event": name,
            "distinct_id": who,
            "properties": props,
            "timestamp": at.isoformat(),
            "uuid": str(uuid.uuid4()),
        }
        for name, who, props, at in events
    ]
    r = await api.http.post("/batch/", json={"api_key": creds.project_api_token, "batch": batch})
    assert r.status_code == 200, r.text


async def cohort_action(api: ApiClient, eid: int, **kwargs: Any) -> Any:
    return await action(api, eid, "create_exposure_cohort_for_experiment", **kwargs)


async def test_exposure_cohort_of_the_flag(api: ApiClient, credentials: Credentials) -> None:
    exp = await create_experiment(api)
    eid = exp["id"]
    r = await cohort_action(api, eid)
    assert r.status_code == 400 and r.json() == bad("Experiment does not have a start date")
    start = (await action(api, eid, "launch")).json()["start_date"]

    r = await cohort_action(api, eid)
    assert r.status_code == 201, r.text
    cohort = r.json()["cohort"]
    assert cohort["name"] == 'Users exposed to experiment "Checkout test"'
    assert cohort["is_static"] is False and cohort["is_calculating"] is True and cohort["count"] is None
    assert cohort["experiment_set"] == [eid]
    criterion = cohort["filters"]["properties"]["values"][0]["values"][0]
    assert criterion == {
        "type": "behavioral",
        "value": "performed_event",
        "key": "$feature_flag_called",
        "negation": False,
        "event_type": "events",
        "event_filters": [
            {"key": "$feature_flag", "value": ["checkout-test"], "operator": "exact", "type": "event"}
        ],
        "explicit_datetime": datetime.fromisoformat(start.replace("Z", "+00:00")).isoformat(),
    }
    got = (await api.get(api.project(f"experiments/{eid}/"))).json()
    assert got["exposure_cohort"] == cohort["id"]
    r = await cohort_action(api, eid)
    assert r.status_code == 400 and r.json() == bad("Experiment already has an exposure cohort")


async def test_members_are_the_flags_callers_since_the_start(
    api: ApiClient, credentials: Credentials
) -> None:
    exp = await create_experiment(api)
    eid = exp["id"]
    await action(api, eid, "launch")
    cohort = (await cohort_action(api, eid)).json()["cohort"]
    now = datetime.now(UTC)
    called = "$feature_flag_called"
    await capture(
        api,
        credentials,
        (called, "user-1", {"$feature_flag": "checkout-test"}, now),
        (called, "user-1", {"$feature_flag": "checkout-test"}, now + timedelta(seconds=1)),
        (called, "user-2", {"$feature_flag": "some-other-flag"}, now),
        (called, "user-3", {"$feature_flag": "checkout-test"}, now - timedelta(days=1)),
        ("$pageview", "user-4", {"$feature_flag": "checkout-test"}, now),
        (called, "user-5", {"$feature_flag": "checkout-test"}, now + timedelta(seconds=2)),
    )
    got = (await api.get(api.project(f"cohorts/{cohort['id']}/"))).json()
    assert got["count"] == 2 and got["is_calculating"] is False and got["experiment_set"] == [eid]
    persons = (await api.get(api.project(f"cohorts/{cohort['id']}/persons/"))).json()
    assert [p["distinct_ids"] for p in persons["results"]] == [["user-1"], ["user-5"]]
    assert persons["next"] is None and persons["previous"] is None
    page = (await api.get(api.project(f"cohorts/{cohort['id']}/persons/?limit=1"))).json()
    assert [p["distinct_ids"] for p in page["results"]] == [["user-1"]] and page["next"] is not None
    listed = (await api.get(api.project("cohorts/"))).json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == cohort["id"]


async def test_custom_exposure_filter(api: ApiClient, credentials: Credentials) -> None:
    custom = {
        "events": [
            {
                "id": "purchase",
                "order": 0,
                "properties": [
                    {"key": "plan", "value": "pro", "operator": "exact", "type": "event"},
                    {"key": "email", "value": "x", "operator": "icontains", "type": "person"},
                ],
            }
        ]
    }
    exp = await create_experiment(api, parameters={"custom_exposure_filter": custom})
    await action(api, exp["id"], "launch")
    cohort = (await cohort_action(api, exp["id"])).json()["cohort"]
    criterion = cohort["filters"]["properties"]["values"][0]["values"][0]
    assert criterion["key"] == "purchase" and criterion["event_type"] == "events"
    assert criterion["event_filters"] == [
        {"key": "plan", "value": "pro", "operator": "exact", "type": "event"}
    ]
    now = datetime.now(UTC)
    await capture(
        api,
        credentials,
        ("purchase", "pro-buyer", {"plan": "pro"}, now),
        ("purchase", "free-buyer", {"plan": "free"}, now),
    )
    persons = (await api.get(api.project(f"cohorts/{cohort['id']}/persons/"))).json()
    assert [p["distinct_ids"] for p in persons["results"]] == [["pro-buyer"]]


async def test_invalid_action_id(api: ApiClient) -> None:
    exp = await create_experiment(
        api, parameters={"custom_exposure_filter": {"actions": [{"id": "not-a-number"}]}}
    )
    await action(api, exp["id"], "launch")
    r = await cohort_action(api, exp["id"])
    assert r.status_code == 400 and r.json() == bad("Invalid action ID")
    assert (await api.get(api.project(f"experiments/{exp['id']}/"))).json()["exposure_cohort"] is None


async def test_scopes_and_isolation(api: ApiClient) -> None:
    exp = await create_experiment(api)
    await action(api, exp["id"], "launch")
    reader = await scoped_key(api, "experiment:read")
    r = await cohort_action(api, exp["id"], key=reader)
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'experiment:write'"
    cohort = (await cohort_action(api, exp["id"])).json()["cohort"]
    r = await api.get(api.project(f"cohorts/{cohort['id']}/"), key=reader)
    assert r.status_code == 403 and r.json()["detail"] == "API key missing required scope 'cohort:read'"
    cohort_reader = await scoped_key(api, "cohort:read")
    assert (await api.get(api.project(f"cohorts/{cohort['id']}/"), key=cohort_reader)).status_code == 200

    other = await other_project(api)
    assert (await api.get(in_project(api, other, f"cohorts/{cohort['id']}/"))).status_code == 404
    assert (await api.get(in_project(api, other, f"cohorts/{cohort['id']}/persons/"))).status_code == 404
    assert (await api.get(in_project(api, other, "cohorts/"))).json()["count"] == 0
    r = await action(api, exp["id"], "create_exposure_cohort_for_experiment")
    assert r.status_code == 400
    r = await api.post(
        in_project(api, other, f"experiments/{exp['id']}/create_exposure_cohort_for_experiment/")
    )
    assert r.status_code == 404
