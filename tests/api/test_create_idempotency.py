"""A create retried with the same Idempotency-Key creates one experiment (issue 13 item 5): the retry
answers with the first answer's status and body; the same key with another body is refused with
422 and changes nothing; a retry after a 503 gets the experiment if it exists, or creates it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from temporalio.client import Client

from db.engine import make_async_engine
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action
from worker import build_worker

BODY = {"name": "Idempotent", "feature_flag_key": "idempotent-create", "allow_unknown_events": True}


async def create(api: ApiClient, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    return await api.post(api.project("experiments/"), body or BODY, headers={"Idempotency-Key": key})


async def names(api: ApiClient) -> list[str]:
    r = await api.get(api.project("experiments/"))
    return [e["name"] for e in r.json()["results"]]


async def test_a_retried_create_returns_the_first_answer(api: ApiClient, worker: None) -> None:
    first = await create(api, "create-once")
    assert first.status_code == 201, first.text
    again = await create(api, "create-once")
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    # Even after the experiment moved on, the retry answers what the create produced.
    assert (await action(api, first.json()["id"], "launch")).status_code == 200
    later = await create(api, "create-once")
    assert later.status_code == 201 and later.json() == first.json()
    assert await names(api) == ["Idempotent"]


async def test_the_same_key_with_another_body_is_refused(api: ApiClient, worker: None) -> None:
    assert (await create(api, "create-key")).status_code == 201
    other = await create(api, "create-key", BODY | {"name": "Something else"})
    assert other.status_code == 422, other.text
    assert other.json() == {
        "type": "invalid_request",
        "code": "idempotency_key_reused",
        "detail": "This Idempotency-Key was already used for a different request. Use a new key for a new request.",
        "attr": None,
    }
    assert await names(api) == ["Idempotent"]


async def test_concurrent_creates_with_one_key_make_one_experiment(api: ApiClient, worker: None) -> None:
    answers = await asyncio.gather(*(create(api, "create-race") for _ in range(6)))
    assert {r.status_code for r in answers} == {201}, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    assert await names(api) == ["Idempotent"]


async def test_a_transition_key_reused_for_another_operation_is_refused(api: ApiClient, worker: None) -> None:
    exp = (await create(api, "create-for-reuse")).json()
    assert (await action(api, exp["id"], "launch", headers={"Idempotency-Key": "k1"})).status_code == 200
    reused = await action(api, exp["id"], "pause", headers={"Idempotency-Key": "k1"})
    assert reused.status_code == 422, reused.text
    state = (await api.get(api.project(f"experiments/{exp['id']}/"))).json()
    assert state["status"] == "running"


async def test_a_retry_after_a_503_creates_it_once(
    short_timeout_api: ApiClient, settings: Settings, temporal_client: Client
) -> None:
    api = short_timeout_api
    started = time.monotonic()
    refused = await create(api, "create-after-503")  # no worker: nobody applies it in time
    assert refused.status_code == 503, refused.text
    assert time.monotonic() - started < 6
    engine = make_async_engine(settings.database_url)
    try:
        async with build_worker(temporal_client, settings, engine):
            # The update the server still held reaches the workflow now, after its deadline: it is
            # refused, not applied behind the caller's back.
            await asyncio.sleep(1.0)
            assert await names(api) == []
            created = await create(api, "create-after-503")
            assert created.status_code == 201, created.text
            again = await create(api, "create-after-503")
            assert again.status_code == 201 and again.json() == created.json()
            assert await names(api) == ["Idempotent"]
    finally:
        await engine.dispose()
