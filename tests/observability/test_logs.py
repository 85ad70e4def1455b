"""Correlated, redacted logs: one request id across the API's and the worker's lines of a launch,
returned in X-Request-ID; no key or token anywhere in what is logged."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from db.bootstrap import Credentials
from observability.logs import build_handler, redact
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from workflows.constants import experiment_workflow_id

pytestmark = pytest.mark.usefixtures("worker")


class Captured:
    def __init__(self, stream: io.StringIO) -> None:
        self.stream = stream

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def logs() -> Iterator[Captured]:
    """The production handler (JSON lines, context and redaction filters) on the root logger."""
    stream = io.StringIO()
    handler = build_handler(stream, json_lines=True)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)  # everything, libraries included: the worst case for leaks
    try:
        yield Captured(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


async def test_one_request_id_across_api_and_worker_lines(api: ApiClient, logs: Captured) -> None:
    exp = await create_experiment(api)
    r = await action(api, exp["id"], "launch", headers={"X-Request-ID": "req-launch-0001"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "req-launch-0001"

    mine = [line for line in logs.lines() if line.get("request_id") == "req-launch-0001"]
    access = [line for line in mine if line["logger"] == "flagship.access"]
    activities = [line for line in mine if line["logger"] == "flagship.activity"]
    assert len(access) == 1 and access[0]["status"] == 200, mine
    assert [line["activity"] for line in activities] == ["experiment.transition"], mine
    workflow_id = experiment_workflow_id(api.project_id, exp["id"])
    for line in (access[0], activities[0]):
        assert line["workflow_id"] == workflow_id
        assert (line["project_id"], line["experiment_id"]) == (api.project_id, exp["id"])
    assert access[0]["route"] == "/api/projects/{project_id}/experiments/{experiment_id}/launch/"


async def test_a_request_id_is_generated_when_none_is_sent(api: ApiClient) -> None:
    first = await api.get(api.project("experiments/"))
    second = await api.get(api.project("experiments/"))
    assert first.headers["x-request-id"] and second.headers["x-request-id"]
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    forged = 'x\r\n{"level": "error"}' + "a" * 200  # log injection, oversized
    unsafe = await api.get(api.project("experiments/"), headers={"X-Request-ID": forged.encode()})
    assert unsafe.headers["x-request-id"] != forged


async def test_sdk_requests_get_request_ids_and_access_lines(
    api: ApiClient, credentials: Credentials, logs: Captured
) -> None:
    """/flags and /batch are answered ahead of the FastAPI stack, with the same request ids and
    access log (at DEBUG: thousands per second) as every other route."""
    token = credentials.project_api_token
    flags = await api.http.post(
        "/flags/?v=2", json={"api_key": token, "distinct_id": "u1"}, headers={"X-Request-ID": "sdk-flags-1"}
    )
    batch = await api.http.post(
        "/batch/", json={"api_key": token, "batch": [{"event": "e", "distinct_id": "u"}]}
    )
    assert flags.status_code == 200 and batch.status_code == 200
    assert flags.headers["x-request-id"] == "sdk-flags-1"
    assert batch.headers["x-request-id"] and batch.headers["x-request-id"] != "sdk-flags-1"
    access = {line["request_id"]: line for line in logs.lines() if line["logger"] == "flagship.access"}
    assert access["sdk-flags-1"]["route"] == "/flags" and access["sdk-flags-1"]["level"] == "debug"
    assert access[batch.headers["x-request-id"]]["route"] == "/batch"
    assert access[batch.headers["x-request-id"]]["status"] == 200


async def test_no_key_or_token_is_logged(api: ApiClient, credentials: Credentials, logs: Captured) -> None:
    token, key = credentials.project_api_token, credentials.personal_api_key
    await api.http.post("/flags/?v=2", json={"api_key": token, "distinct_id": "u1"})
    await api.http.post(f"/flags/?v=2&token={token}", json={"distinct_id": "u2"})
    await api.http.post("/batch/", json={"api_key": token, "batch": [{"event": "e", "distinct_id": "u"}]})
    exp = await create_experiment(api)
    await action(api, exp["id"], "launch")
    await api.get(api.project("experiments/"), key="phx_notavalidkey000000000000000000000")
    # Someone logging a secret by mistake: the filter and the formatter still keep it out.
    logging.getLogger("flagship.test").warning(
        "calling with %s, headers %s", key, {"Authorization": f"Bearer {key}", "X-Token": token}
    )
    text = logs.text
    assert text, "nothing was logged"
    for secret in (token, key, "phx_notavalidkey000000000000000000000"):
        assert secret not in text
    assert "phx_[REDACTED]" in text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("key phx_abc123DEF", "key phx_[REDACTED]"),
        ("token=phc_abcdef&x=1", "token=[REDACTED]&x=1"),
        ("Authorization: Bearer eyJabc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ('{"authorization": "Basic dXNlcjpwYXNz"}', '{"authorization": "Basic [REDACTED]"}'),
        ('{"api_key":"secret-value"}', '{"api_key":"[REDACTED]"}'),
        (
            "postgresql+psycopg://flagship:hunter2@db:5432/flagship",
            "postgresql+psycopg://flagship:[REDACTED]@db:5432/flagship",
        ),
        ("launch of experiment 12 took 3 ms", "launch of experiment 12 took 3 ms"),
    ],
)
def test_redaction(raw: str, expected: str) -> None:
    assert redact(raw) == expected
