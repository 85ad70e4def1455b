"""Capture endpoints through the app, checked against what lands in the database (both backends)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from db.bootstrap import Credentials
from db.engine import make_async_engine, make_sessionmaker
from db.events import _sqlite_datetime
from db.tables import Event, EventDefinition, GroupTypeMapping
from settings import Settings
from tests.support.api_client import ApiClient

PATHS = ("/batch/", "/batch", "/e/", "/e", "/capture/", "/i/v0/e/", "/i/v0/e", "/i/v0/ai/batch/", "/track/")


@pytest_asyncio.fixture(loop_scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = make_async_engine(settings.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def stored(engine: AsyncEngine) -> list[Event]:
    async with make_sessionmaker(engine)() as session:
        return list((await session.exec(select(Event).order_by(col(Event.id)))).all())


def event(name: str = "purchase", distinct_id: Any = "user-1", **extra: Any) -> dict[str, Any]:
    return {"event": name, "distinct_id": distinct_id, "uuid": str(uuid.uuid4()), **extra}


def batch(creds: Credentials, *events: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"api_key": creds.project_api_token, "batch": list(events), "historical_migration": False, **extra}


async def test_batch_is_stored_with_definitions(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    first = event(properties={"amount": 12.5, "$lib": "posthog-python"}, timestamp=now.isoformat())
    second = event("$pageview", distinct_id=42)
    r = await api.http.post("/batch/", json=batch(credentials, first, second, sent_at=now.isoformat()))
    assert r.status_code == 200 and r.json() == {"status": 1}
    rows = await stored(engine)
    assert [(e.uuid, e.event, e.distinct_id, e.team_id) for e in rows] == [
        (first["uuid"], "purchase", "user-1", credentials.project_id),
        (second["uuid"], "$pageview", "42", credentials.project_id),
    ]
    assert rows[0].properties == {"amount": 12.5, "$lib": "posthog-python"}
    assert abs(rows[0].timestamp - now) < timedelta(seconds=5)
    async with make_sessionmaker(engine)() as session:
        names = (await session.exec(select(EventDefinition.name).order_by(col(EventDefinition.name)))).all()
    assert list(names) == ["$pageview", "purchase"]


async def test_every_path_encoding_and_token_place(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    token = credentials.project_api_token
    for path in PATHS:
        r = await api.http.post(path, json=batch(credentials, event(path)))
        assert r.status_code == 200, (path, r.text)
    plain = json.dumps(batch(credentials, event("gzip"))).encode()
    assert (
        await api.http.post("/batch/", content=gzip.compress(plain), headers={"content-encoding": "gzip"})
    ).status_code == 200
    js = json.dumps([{**event("js"), "properties": {"token": token}}]).encode()
    assert (await api.http.post("/e/?compression=gzip-js", content=gzip.compress(js))).status_code == 200
    form = b"data=" + base64.b64encode(json.dumps(event("form", api_key=token)).encode())
    r = await api.http.post(
        "/e/", content=form, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert r.status_code == 200, r.text
    assert (await api.http.post(f"/capture/?token={token}", json=event("single"))).status_code == 200
    assert (await api.http.post("/i/v0/e/", json={"token": token, **event("token-key")})).status_code == 200
    names = [e.event for e in await stored(engine)]
    assert names == [*PATHS, "gzip", "js", "form", "single", "token-key"]


async def test_timestamps_follow_posthog_clock_rules(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)
    skewed_client = now + timedelta(hours=2)
    events = [
        event("skew", timestamp=(skewed_client - timedelta(minutes=5)).isoformat()),
        event("offset", offset=60_000),
        event("historical", timestamp="2020-01-01T00:00:00Z"),
        event("no-timestamp"),
    ]
    assert (
        await api.http.post(
            "/batch/", json=batch(credentials, *events[:2], sent_at=skewed_client.isoformat())
        )
    ).status_code == 200
    body = batch(credentials, *events[2:], sentAt=skewed_client.isoformat(), historical_migration=True)
    assert (await api.http.post("/batch/", json=body)).status_code == 200
    rows = {e.event: e.timestamp for e in await stored(engine)}
    assert abs(rows["skew"] - (now - timedelta(minutes=5))) < timedelta(seconds=5)
    assert abs(rows["offset"] - (now - timedelta(minutes=1))) < timedelta(seconds=5)
    assert rows["historical"] == datetime(2020, 1, 1, tzinfo=UTC)
    assert abs(rows["no-timestamp"] - now) < timedelta(seconds=5)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        datetime(2024, 6, 1, 1, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2))),
        datetime.fromisoformat("2026-03-04T05:06:07.000001-07:30"),
    ],
)
def test_raw_sqlite_timestamps_are_sqlalchemys_text(moment: datetime) -> None:
    """The raw insert must write what the ORM writes, or its string-compared range filters would miss rows."""
    column_type = Event.__table__.c.timestamp.type  # type: ignore[attr-defined]
    dialect = sqlite.dialect()
    bind = column_type.dialect_impl(dialect).bind_processor(dialect)
    assert _sqlite_datetime(moment) == bind(moment)


async def test_orm_range_filters_see_raw_inserted_rows(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    stamps = [
        "2024-01-01T00:00:00Z",
        "2024-01-01T12:00:00.5+00:00",
        "2024-01-02T00:00:00+02:00",
        "2024-01-03T00:00:00Z",
    ]
    events = [event(f"e{i}", timestamp=ts) for i, ts in enumerate(stamps)]
    assert (
        await api.http.post("/batch/", json=batch(credentials, *events, historical_migration=True))
    ).status_code == 200
    low, high = datetime(2024, 1, 1, 6, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)
    async with make_sessionmaker(engine)() as session:
        query = (
            select(Event.event)
            .where(Event.timestamp >= low, Event.timestamp < high)
            .order_by(col(Event.timestamp))
        )
        assert list((await session.exec(query)).all()) == ["e1", "e2"]


async def test_uuids_are_deduplicated_per_project(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    repeated = event("once")
    assert (await api.http.post("/batch/", json=batch(credentials, repeated, repeated))).status_code == 200
    assert (
        await api.http.post("/batch/", json=batch(credentials, repeated, event("other")))
    ).status_code == 200
    other = (await api.post("/api/projects/", {"name": "Other"})).json()
    for _ in range(50):  # the new project's token reaches the cache within a poll or two
        r = await api.http.post("/batch/", json={"api_key": other["api_token"], "batch": [repeated]})
        if r.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert r.status_code == 200
    rows = await stored(engine)
    assert sorted((e.event, e.team_id) for e in rows) == sorted(
        [("once", credentials.project_id), ("other", credentials.project_id), ("once", other["id"])]
    )


@pytest.mark.parametrize(
    ("bad", "detail", "attr"),
    [
        (
            {"distinct_id": "u"},
            "Invalid payload: All events must have the event name field 'event'!",
            "batch__1__event",
        ),
        (
            {"event": "", "distinct_id": "u"},
            "Invalid payload: All events must have the event name field 'event'!",
            "batch__1__event",
        ),
        (
            {"event": 5, "distinct_id": "u"},
            'Invalid payload: Event field "event" must be a string.',
            "batch__1__event",
        ),
        (
            {"event": "e"},
            'Invalid payload: All events must have the event field "distinct_id"!',
            "batch__1__distinct_id",
        ),
        (
            {"event": "e", "distinct_id": ""},
            'Invalid payload: Event field "distinct_id" should not be blank!',
            "batch__1__distinct_id",
        ),
        (
            {"event": "e", "distinct_id": {"a": 1}},
            'Invalid payload: Event field "distinct_id" must be a string or a number.',
            "batch__1__distinct_id",
        ),
        (
            {"event": "e", "distinct_id": "u", "properties": [1]},
            "Invalid payload: Properties must be a JSON object, received list!",
            "batch__1__properties",
        ),
        (
            {"event": "e", "distinct_id": "u", "uuid": "nope"},
            'Invalid payload: Event field "uuid" must be a valid UUID.',
            "batch__1__uuid",
        ),
        (
            {"event": "e", "distinct_id": "u", "timestamp": 12},
            'Invalid payload: Event field "timestamp" must be an ISO-8601 datetime.',
            "batch__1__timestamp",
        ),
        ("not an event", "Invalid payload: every event must be a JSON object.", "batch__1"),
    ],
)
async def test_a_malformed_event_refuses_the_whole_batch(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine, bad: Any, detail: str, attr: str
) -> None:
    r = await api.http.post("/batch/", json=batch(credentials, event("fine"), bad))
    assert r.status_code == 400
    assert r.json() == {"type": "validation_error", "code": "invalid_payload", "detail": detail, "attr": attr}
    assert await stored(engine) == []


async def test_malformed_envelopes(api: ApiClient, credentials: Credentials, engine: AsyncEngine) -> None:
    for content in (b"{broken", b"", gzip.compress(b"[")):
        headers = {"content-encoding": "gzip"} if content.startswith(b"\x1f\x8b") else {}
        r = await api.http.post("/batch/", content=content, headers=headers)
        assert r.status_code == 400 and set(r.json()) == {"type", "code", "detail", "attr"}, content
    r = await api.http.post("/batch/", json=batch(credentials))
    assert r.status_code == 400 and r.json()["detail"] == "Invalid payload: request holds no event."
    r = await api.http.post(
        "/batch/", json={"api_key": credentials.project_api_token, "batch": {"event": "e"}}
    )
    assert r.status_code == 400 and r.json()["attr"] == "batch"
    assert await stored(engine) == []


async def test_values_the_store_cannot_hold(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    token = credentials.project_api_token
    cases = [
        ('{"s": "\\ud800"}', "D800", "batch__0__properties__s"),
        ('{"\\udfff": 1}', "DFFF", "batch__0__properties"),  # a key counts against its object
    ]
    for props, code_point, attr in cases:
        content = f'{{"api_key": "{token}", "batch": [{{"event": "e", "distinct_id": "u", "properties": {props}}}]}}'
        r = await api.http.post(
            "/batch/", content=content.encode(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 400, (props, r.text)
        assert r.json() == {
            "type": "validation_error",
            "code": "surrogate_characters_not_allowed",
            "detail": f"Surrogate characters are not allowed: U+{code_point}.",
            "attr": attr,
        }
    nul = event("a\u0000b", distinct_id="x\u0000y", properties={"k\u0000": "v\u0000"})
    assert (await api.http.post("/batch/", json=batch(credentials, nul))).status_code == 200
    (row,) = await stored(engine)
    assert (row.event, row.distinct_id, row.properties) == ("a\ufffdb", "x\ufffdy", {"k\ufffd": "v\ufffd"})


async def test_token_errors(api: ApiClient, engine: AsyncEngine) -> None:
    r = await api.http.post("/batch/", json={"batch": [event()]})
    assert r.status_code == 401
    assert r.json() == {
        "type": "authentication_error",
        "code": "missing_api_key",
        "detail": "API key not provided. You can find your project API key in PostHog project settings.",
        "attr": None,
    }
    r = await api.http.post("/batch/", json={"api_key": "phc_unknown", "batch": [event()]})
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"
    assert await stored(engine) == []


async def test_group_types_get_indexes_in_order_of_first_sight(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    first = event(properties={"$groups": {"company": "acme"}})
    second = event(properties={"$groups": {"team": "t", "company": "acme", "project": "p"}})
    third = event("$groupidentify", properties={"$group_type": "workspace", "$group_key": "w"})
    fourth = event(properties={"$groups": {"region": "eu", "country": "de", "city": "b"}})
    for e in (first, second, third, fourth):
        assert (await api.http.post("/batch/", json=batch(credentials, e))).status_code == 200
    async with make_sessionmaker(engine)() as session:
        rows = (
            await session.exec(select(GroupTypeMapping).order_by(col(GroupTypeMapping.group_type_index)))
        ).all()
    assert [(m.group_type, m.group_type_index) for m in rows] == [
        ("company", 0),
        ("team", 1),
        ("project", 2),
        ("workspace", 3),
        ("region", 4),
    ]
    assert len(await stored(engine)) == 4


async def test_concurrent_batches_are_all_stored(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    bodies = [
        batch(credentials, *(event(f"e{n % 7}", distinct_id=f"u{n}-{i}") for i in range(50)))
        for n in range(40)
    ]
    answers = await asyncio.gather(*(api.http.post("/batch/", json=b) for b in bodies))
    assert [r.status_code for r in answers] == [200] * 40
    assert len(await stored(engine)) == 2000


async def test_v1_capture_answers_per_event_results(
    api: ApiClient, credentials: Credentials, engine: AsyncEngine
) -> None:
    events = [{**event(), "options": {}}, {**event("second"), "uuid": str(uuid.uuid4()).upper()}]
    body = {"created_at": datetime.now(UTC).isoformat(), "batch": events}
    headers = {"Authorization": f"Bearer {credentials.project_api_token}"}
    r = await api.http.post("/i/v1/analytics/events", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json() == {"results": {e["uuid"]: {"result": "ok"} for e in events}}
    assert [e.event for e in await stored(engine)] == ["purchase", "second"]
    r = await api.http.post("/i/v1/analytics/events", json=body)
    assert r.status_code == 401
