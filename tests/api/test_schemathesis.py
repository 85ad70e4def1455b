"""schemathesis over /api/schema/: generated requests to every documented operation, a bounded number
per operation, with the bootstrap key, against seeded data, must never get a 5xx other than the 503s
Flagship answers on purpose (tests/support/schemathesis_checks.py).

The app is served by uvicorn over real HTTP with an in-process worker (the `worker` fixture), and
the seeded objects are handed to schemathesis as parameter values, one experiment per lifecycle
action in the state that action needs, so requests reach the logic behind each route instead of a
404 or a state refusal. The schemathesis CLI runs as a subprocess (its own event loop and threads);
this test awaits it, so the worker keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from db.bootstrap import Credentials
from settings import Settings
from tests.support.server import serve
from tests.support.users import make_user

pytestmark = pytest.mark.usefixtures("worker")

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "st"
# Bounded: about two minutes on two shared cores (the coverage phase is most of it; max-examples
# bounds the fuzzing phase); the seed keeps runs comparable.
MAX_EXAMPLES = 8
SEED = 20261213
METRIC = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "$pageview"},
}
PROJECT = "/api/projects/{project_id}"
EXPERIMENT = f"{PROJECT}/experiments/{{experiment_id}}"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """SQLite only, to stay within its time budget: the subject is how the API handles what it is
    sent; PostgreSQL's own refusals (NUL, ranges) are covered in tests/api/test_hostile_bodies.py."""
    return sqlite_url


@pytest.fixture
def base_url(settings: Settings, credentials: Credentials) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


class Seeder:
    def __init__(self, http: httpx.AsyncClient, project_id: int) -> None:
        self.http, self.project = http, f"/api/projects/{project_id}/"

    async def post(self, path: str, body: Any = None, *, key: str | None = None, expect: int = 201) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        r = await self.http.post(self.project + path, json=body, headers=headers)
        assert r.status_code in (expect, 200), (path, r.text)
        return r.json()

    async def experiment(self, key: str, *actions: str) -> int:
        body = {"name": key, "feature_flag_key": key, "allow_unknown_events": True, "metrics": [METRIC]}
        experiment_id = int((await self.post("experiments/", body))["id"])
        for action in actions:
            await self.post(f"experiments/{experiment_id}/{action}/", expect=200)
        return experiment_id

    async def change_request(self, key: str, requester: str) -> str:
        """A pending ship_variant change request (a policy on feature_flag.update is in place)."""
        experiment_id = await self.experiment(key, "launch")
        path = f"experiments/{experiment_id}/ship_variant/"
        answer = await self.post(path, {"variant_key": "test"}, key=requester, expect=409)
        return str(answer["change_request_id"])


async def seed(base_url: str, settings: Settings, creds: Credentials) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {creds.personal_api_key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as http:
        s = Seeder(http, creds.project_id)
        me = (await http.get("/api/users/@me/")).json()
        ids: dict[str, Any] = {"project": creds.project_id, "main_key": "st-main"}
        ids["main"] = await s.experiment("st-main")
        for action, steps in {
            "launch": (),
            "pause": ("launch",),
            "resume": ("launch", "pause"),
            "end": ("launch",),
            "ship_variant": ("launch",),
            "reset": ("launch", "end"),
            "archive": ("launch", "end"),
            "unarchive": ("launch", "end", "archive"),
            "recalculate_timeseries": ("launch",),
            "timeseries_results": ("launch",),
            "create_exposure_cohort_for_experiment": ("launch",),
        }.items():
            ids[action] = await s.experiment(f"st-{action.replace('_', '-')}", *steps)
        ids["flag"] = (await s.post("feature_flags/", {"key": "st-flag"}))["id"]
        holdout = {"name": "st-holdout", "filters": [{"properties": [], "rollout_percentage": 10}]}
        ids["holdout"] = (await s.post("experiment_holdouts/", holdout))["id"]
        ids["doomed_holdout"] = (await s.post("experiment_holdouts/", holdout | {"name": "st-doomed"}))["id"]
        for name in ("metric", "doomed_metric"):
            saved = {"name": f"st-{name}", "query": METRIC}
            ids[name] = (await s.post("experiment_saved_metrics/", saved))["id"]
        ids["prompt"] = (await s.post("llm_prompts/", {"name": "st-prompt", "prompt": "v1"}))["id"]
        r = await http.patch(
            s.project + "llm_prompts/name/st-prompt/", json={"prompt": "v2", "base_version": 1}
        )
        assert r.status_code == 200, r.text
        ids["target_project"] = (await http.post("/api/projects/", json={"name": "st-target"})).json()["id"]
        exposed = await s.post(
            f"experiments/{ids['timeseries_results']}/create_exposure_cohort_for_experiment/"
        )
        ids["cohort"] = exposed["cohort"]["id"]
        _, other_user_key = await make_user(settings, creds.project_id)
        policy = {"action_key": "feature_flag.update", "approver_config": {"quorum": 1, "users": [me["id"]]}}
        ids["policy"] = (await s.post("approval_policies/", policy))["id"]
        doomed_policy = {"action_key": "feature_flag.enable", "enabled": False}
        ids["doomed_policy"] = (await s.post("approval_policies/", doomed_policy))["id"]
        ids["cr_approve"] = await s.change_request("st-cr-approve", other_user_key)
        ids["cr_reject"] = await s.change_request("st-cr-reject", other_user_key)
        ids["cr_cancel"] = await s.change_request("st-cr-cancel", creds.personal_api_key)
        throwaway = await http.post(
            "/api/personal_api_keys/", json={"label": "st", "scopes": ["experiment:read"]}
        )
        ids["key"] = throwaway.json()["id"]
        return ids


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def config(ids: dict[str, Any]) -> str:
    """schemathesis.toml: our check only, and the seeded objects as parameter values."""
    lines = [
        "[checks]",
        "enabled = false",
        "[checks.no_undocumented_server_error]",
        "enabled = true",
        *(
            f"[dictionaries.{name}]\nvalues = {json.dumps(values)}"
            for name, values in {
                "main_key": [ids["main_key"]],
                "target_project": [ids["target_project"]],
                "prompt": ["st-prompt"],
                "versions": [1, 2],
                "launched": [ids["end"]],
            }.items()
        ),
        "[parameters]",
        *(
            f"{json.dumps('path.' + name)} = {_toml(value)}"
            for name, value in {
                "project_id": str(ids["project"]),
                "experiment_id": ids["main"],
                "flag_id": ids["flag"],
                "holdout_id": ids["holdout"],
                "metric_id": ids["metric"],
                "policy_id": ids["policy"],
                "cr_id": ids["cr_approve"],
                "prompt_id": ids["prompt"],
                "name": "st-prompt",
                "cohort_id": ids["cohort"],
                "key_id": ids["key"],
            }.items()
        ),
    ]
    bind = {"dictionary": "", "probability": 1.0}
    operations: list[tuple[str, str, dict[str, Any]]] = [
        *(
            (
                "POST" if action != "timeseries_results" else "GET",
                f"{EXPERIMENT}/{action}/",
                {"path.experiment_id": ids[action]},
            )
            for action in (
                "launch",
                "pause",
                "resume",
                "end",
                "ship_variant",
                "reset",
                "archive",
                "unarchive",
                "recalculate_timeseries",
                "timeseries_results",
                "create_exposure_cohort_for_experiment",
            )
        ),
        ("POST", f"{PROJECT}/change_requests/{{cr_id}}/reject/", {"path.cr_id": ids["cr_reject"]}),
        ("DELETE", f"{PROJECT}/approval_policies/{{policy_id}}/", {"path.policy_id": ids["doomed_policy"]}),
        (
            "DELETE",
            f"{PROJECT}/experiment_holdouts/{{holdout_id}}/",
            {"path.holdout_id": ids["doomed_holdout"]},
        ),
        (
            "DELETE",
            f"{PROJECT}/experiment_saved_metrics/{{metric_id}}/",
            {"path.metric_id": ids["doomed_metric"]},
        ),
        ("POST", f"{PROJECT}/change_requests/{{cr_id}}/cancel/", {"path.cr_id": ids["cr_cancel"]}),
        ("PUT", f"{EXPERIMENT}/", {"body.feature_flag_key": bind | {"dictionary": "main_key"}}),
        (
            "POST",
            f"{EXPERIMENT}/copy_to_project/",
            {"body.target_team_id": bind | {"dictionary": "target_project"}},
        ),
        (
            "POST",
            f"{PROJECT}/experiments/create_from_prompt/",
            {
                "body.prompt_name": bind | {"dictionary": "prompt"},
                "body.versions[*]": bind | {"dictionary": "versions"},
            },
        ),
        ("POST", f"{PROJECT}/query/", {"body.query.experiment_id": bind | {"dictionary": "launched"}}),
    ]
    for method, path, parameters in operations:
        lines += [
            "[[operations]]",
            # One filter: separate method and path filters would match either (they are or-ed).
            f"include-name = {json.dumps(f'{method} {path}')}",
            f"parameters = {_toml(parameters)}",
        ]
    return "\n".join(lines) + "\n"


async def test_no_server_errors(
    base_url: str, settings: Settings, credentials: Credentials, tmp_path: Path
) -> None:
    ids = await seed(base_url, settings, credentials)
    (tmp_path / "schemathesis.toml").write_text(config(ids))
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        f"{base_url}/api/schema/",
        "--header",
        f"Authorization: Bearer {credentials.personal_api_key}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        # One worker: schemathesis's coverage phase shares caches between its workers (a runtime
        # error under contention was seen with two).
        "--workers",
        "1",
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--no-color",
        # Its crash cache goes to the working directory: a temporary one, not the repository.
        cwd=tmp_path,
        env=os.environ | {"SCHEMATHESIS_HOOKS": "tests.support.schemathesis_checks", "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()
    report = output.decode(errors="replace")
    print(report)  # the whole report (warnings included) in the test log
    assert proc.returncode == 0, report[-20_000:]
