"""Fifty concurrent lifecycle POSTs at one running experiment, through real `python -m api` and
`python worker.py` processes (make run's shape) on SQLite and on PostgreSQL (issue 13 item 3).

Every answer must be true: the accepted transitions in the audit trail and in the workflow's
`history` are exactly the requests answered 200; each 200 body is the experiment as that transition
left it; the final status, the flag and the workflow's `state` follow from the last accepted
transition. Repeated over several rounds, since races show up only sometimes."""

from __future__ import annotations

import asyncio
import random
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.experiment_messages import ExperimentSnapshot, HistoryEntry
from domain.operation_ids import update_operation_id
from tests.support.bootstrap import run_bootstrap
from tests.support.processes import base_env, free_port, process, wait_for
from workflows.client import connect, ensure_namespace, ensure_search_attributes
from workflows.constants import experiment_workflow_id

pytestmark = pytest.mark.slow

KEY = "phx_racetestkey000000000000000000000000000000"
ROUNDS = 3
STATUS_AFTER = {"pause": "paused", "resume": "running", "end": "stopped"}


def fifty_requests(rng: random.Random) -> list[str]:
    """24 pause, 23 resume and 3 end, the ends among the last fifth."""
    head = ["pause"] * 20 + ["resume"] * 20
    tail = ["pause"] * 4 + ["resume"] * 3 + ["end"] * 3
    rng.shuffle(head)
    rng.shuffle(tail)
    return head + tail


@dataclass
class Flagship:
    base: str
    project_id: int
    client: Client

    def url(self, path: str) -> str:
        return f"{self.base}/api/projects/{self.project_id}/{path}"


@pytest_asyncio.fixture(loop_scope="session")
async def flagship(
    tmp_path: Path, database_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Flagship]:
    creds = await run_bootstrap(database_url, KEY)
    assert creds is not None
    project_id = creds.project_id
    address = temporal_env.client.service_client.config.target_host
    namespace = f"race-{uuid.uuid4().hex[:8]}"
    client = await _namespace(temporal_env.client, address, namespace)
    port = free_port()
    env = base_env(tmp_path, database_url) | {
        "PORT": str(port),
        "TEMPORAL_ADDRESS": address,
        "TEMPORAL_NAMESPACE": namespace,
    }
    base = f"http://127.0.0.1:{port}"
    with ExitStack() as stack:
        stack.enter_context(process([sys.executable, "worker.py"], env, tmp_path / "worker.log"))
        api = stack.enter_context(process([sys.executable, "-m", "api"], env, tmp_path / "api.log"))
        await asyncio.to_thread(wait_for, f"{base}/_health", api, tmp_path / "api.log")
        yield Flagship(base, project_id, client)


async def _namespace(admin: Client, address: str, namespace: str) -> Client:
    await ensure_namespace(admin, namespace)
    await ensure_search_attributes(admin, namespace)
    return await connect(address, namespace)


@dataclass
class Answer:
    operation: str
    key: str
    status: int
    body: dict[str, Any]


async def fire(http: httpx.AsyncClient, flagship: Flagship, eid: int, operations: list[str]) -> list[Answer]:
    async def one(operation: str) -> Answer:
        key = f"race-{uuid.uuid4().hex}"
        url = flagship.url(f"experiments/{eid}/{operation}/")
        try:
            r = await http.post(url, headers={"Idempotency-Key": key})
        except httpx.RemoteProtocolError:
            # A pooled connection closed under the request: what a client does, the same key again.
            r = await http.post(url, headers={"Idempotency-Key": key})
        return Answer(operation, key, r.status_code, r.json())

    return list(await asyncio.gather(*(one(op) for op in operations)))


async def check_round(http: httpx.AsyncClient, flagship: Flagship, rng: random.Random) -> None:
    r = await http.post(
        flagship.url("experiments/"),
        json={"name": "race", "feature_flag_key": f"race-{uuid.uuid4().hex[:8]}"},
    )
    assert r.status_code == 201, r.text
    eid = r.json()["id"]
    assert (await http.post(flagship.url(f"experiments/{eid}/launch/"))).status_code == 200
    answers = await fire(http, flagship, eid, fifty_requests(rng))
    unexpected = [(a.operation, a.status, a.body) for a in answers if a.status not in (200, 400, 409, 503)]
    assert not unexpected, unexpected
    workflow_id = experiment_workflow_id(flagship.project_id, eid)
    ok = {update_operation_id(workflow_id, a.key): a for a in answers if a.status == 200}

    # Each 200 body is the experiment as that transition left it.
    wrong = [
        (a.operation, a.body["status"]) for a in ok.values() if a.body["status"] != STATUS_AFTER[a.operation]
    ]
    assert not wrong, wrong

    trail = (await http.get(flagship.url(f"experiments/{eid}/activity/?limit=1000"))).json()["results"]
    accepted = [
        row for row in reversed(trail) if row["outcome"] == "accepted" and row["operation"] in STATUS_AFTER
    ]
    assert sorted(row["operation_id"] for row in accepted) == sorted(ok), (
        [(a.operation, a.status, a.body.get("detail")) for a in answers],
        [(row["operation"], row["operation_id"]) for row in accepted],
    )
    handle = flagship.client.get_workflow_handle(workflow_id)
    history = await handle.query("history", result_type=list[HistoryEntry])
    in_history = [
        update_operation_id(workflow_id, h.update_id)
        for h in history
        if h.outcome == "accepted" and h.operation in STATUS_AFTER and h.update_id
    ]
    assert sorted(in_history) == sorted(ok)

    # The final state follows from the last accepted transition (the trail is in commit order).
    expected = STATUS_AFTER[accepted[-1]["operation"]] if accepted else "running"
    final = (await http.get(flagship.url(f"experiments/{eid}/"))).json()
    state = await handle.query("state", result_type=ExperimentSnapshot)
    assert final["status"] == expected == state.status.value
    # End leaves the flag as it was: active unless the last pause/resume before it was a pause.
    toggles = [row["operation"] for row in accepted if row["operation"] != "end"]
    active = not toggles or toggles[-1] == "resume"
    assert final["feature_flag"]["active"] == active == state.flag_active


async def test_fifty_concurrent_transitions_are_reported_truly(flagship: Flagship) -> None:
    rng = random.Random(13)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        headers=headers, timeout=60, limits=httpx.Limits(max_connections=64)
    ) as http:
        for _ in range(ROUNDS):
            await check_round(http, flagship, rng)
