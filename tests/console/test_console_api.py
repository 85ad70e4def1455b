"""The JSON endpoints the console adds (api/routes/console.py), in-process on SQLite and PostgreSQL:
sign-in codes (single use, 10 minutes, stored hashed), the Temporal UI setting, and the exposures of
a page of experiments from one event query."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import select

from db.console_sign_in import issue_code, sign_in_link_code
from db.engine import make_async_engine, make_sessionmaker
from db.experiment_exposures import exposures_of
from db.tables import ConsoleSignInCode, User
from domain.metric_engine import to_micros
from domain.sign_in import hash_code
from settings import Settings
from tests.support.analysis import Row, store_events
from tests.support.api_client import ApiClient
from tests.support.experiments import create_experiment

pytestmark = pytest.mark.usefixtures("worker")
SIGN_IN = "/api/console/sign_in/"


async def code_for_first_user(settings: Settings, now: datetime) -> str:
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            user = (await session.exec(select(User))).first()
            assert user is not None and user.id is not None
            code = await issue_code(session, user.id, now)
            await session.commit()
            return code
    finally:
        await engine.dispose()


async def test_a_sign_in_code_gives_a_new_key_once(api: ApiClient, settings: Settings) -> None:
    code = await sign_in_link_code(settings.database_url)
    assert code is not None
    r = await api.http.post(SIGN_IN, json={"code": code})
    assert r.status_code == 201, r.text
    key = r.json()["personal_api_key"]
    assert key.startswith("phx_") and key != api.key
    me = await api.get("/api/users/@me/", key=key)
    assert me.status_code == 200 and me.json()["scopes"] == ["*"]
    keys = (await api.get("/api/personal_api_keys/")).json()
    assert "Web console" in [k["label"] for k in keys]
    again = await api.http.post(SIGN_IN, json={"code": code})
    assert again.status_code == 400
    assert again.json() == {
        "type": "validation_error",
        "code": "sign_in_code_used",
        "detail": "This sign-in link has already been used. Run `make run` again for a new one.",
        "attr": "code",
    }
    engine = make_async_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = (await session.exec(select(ConsoleSignInCode))).all()
    finally:
        await engine.dispose()
    assert [row.code_hash for row in rows] == [hash_code(code)]  # only the hash is kept
    assert rows[0].used_at is not None


async def test_expired_unknown_and_missing_codes_are_refused(api: ApiClient, settings: Settings) -> None:
    old = await code_for_first_user(settings, datetime.now(UTC) - timedelta(minutes=10, seconds=1))
    expired = await api.http.post(SIGN_IN, json={"code": old})
    assert expired.status_code == 400 and expired.json()["code"] == "sign_in_code_expired"
    assert "expired" in expired.json()["detail"]
    unknown = await api.http.post(SIGN_IN, json={"code": "nope"})
    assert unknown.status_code == 400 and unknown.json()["code"] == "sign_in_code_unknown"
    for body in ({}, {"code": "  "}, None):
        missing = await api.http.post(SIGN_IN, json=body)
        assert missing.status_code == 400 and missing.json()["attr"] == "code", missing.text
    # An expired code stays unusable: nothing is spent or created.
    keys = (await api.get("/api/personal_api_keys/")).json()
    assert "Web console" not in [k["label"] for k in keys]


async def test_two_redemptions_at_once_give_one_key(api: ApiClient, settings: Settings) -> None:
    code = await code_for_first_user(settings, datetime.now(UTC))
    answers = await asyncio.gather(*(api.http.post(SIGN_IN, json={"code": code}) for _ in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 400, 400, 400]


async def test_the_console_config_names_the_temporal_ui_to_signed_in_callers(
    api: ApiClient, settings: Settings
) -> None:
    assert (await api.http.get("/api/console/config/")).status_code == 401
    body = (await api.get("/api/console/config/")).json()
    assert body == {"temporal_ui_url": None, "temporal_namespace": settings.temporal_namespace}


def test_make_run_points_the_console_at_its_embedded_temporal_ui() -> None:
    from run import child_environment

    embedded = child_environment(Settings(temporal_ui_port=9999))
    assert embedded["TEMPORAL_UI_URL"] == "http://127.0.0.1:9999"
    chosen = child_environment(Settings(temporal_ui_url="https://temporal.example.test"))
    assert "TEMPORAL_UI_URL" not in chosen or chosen["TEMPORAL_UI_URL"] != "http://127.0.0.1:8233"
    external = child_environment(Settings(temporal_address="temporal:7233"))
    assert external.get("TEMPORAL_UI_URL") != "http://127.0.0.1:8233"


def called(flag: str, user: str, variant: str, when: datetime, **props: Any) -> Row:
    return (
        "$feature_flag_called",
        user,
        when,
        {"$feature_flag": flag, "$feature_flag_response": variant, **props},
    )


async def three_experiments(api: ApiClient, settings: Settings) -> list[dict[str, Any]]:
    start = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    h = timedelta(hours=1)
    a = await create_experiment(api, feature_flag_key="page-a", start_date=start.isoformat())
    b = await create_experiment(
        api,
        feature_flag_key="page-b",
        start_date=(start + 5 * h).isoformat(),
        exposure_criteria={"filterTestAccounts": False},
    )
    draft = await create_experiment(api, feature_flag_key="page-draft")
    rows = [
        called("page-a", "u1", "control", start + h),
        called("page-a", "u2", "test", start + 2 * h),
        called("page-a", "u3", "test", start + 3 * h),
        called("page-a", "u3", "control", start + 4 * h),  # u3: `$multiple`
        called("page-a", "local", "test", start + 4 * h, **{"$host": "localhost"}),
        called("page-b", "u1", "test", start + 2 * h),  # before b's start
        called("page-b", "u4", "test", start + 6 * h),
        called("page-b", "local", "control", start + 6 * h, **{"$host": "localhost"}),
        called("page-draft", "u5", "control", start + 6 * h),
    ]
    await store_events(settings, api.project_id, rows)
    return [a, b, draft]


async def test_exposures_of_a_page_equal_each_experiments_exposure_query(
    api: ApiClient, settings: Settings
) -> None:
    a, b, draft = await three_experiments(api, settings)
    ids = ",".join(str(e["id"]) for e in (a, b, draft)) + ",999999"
    r = await api.get(api.project(f"experiment_exposures/?ids={ids}"))
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert set(results) == {str(a["id"]), str(b["id"])}  # drafts and unknown ids have none
    for exp in (a, b):
        query = {"query": {"kind": "ExperimentExposureQuery", "experiment_id": exp["id"]}}
        one = (await api.post(api.project("query/"), query)).json()
        assert results[str(exp["id"])] == one["total_exposures"]
    # filterTestAccounts (a's default) drops the localhost user; b has no such filter.
    assert results[str(a["id"])] == {"control": 1, "test": 1, "$multiple": 1}
    assert results[str(b["id"])] == {"control": 1, "test": 1}
    bad = await api.get(api.project("experiment_exposures/?ids=1,x"))
    assert bad.status_code == 400 and bad.json()["attr"] == "ids"


async def test_a_page_of_exposures_costs_the_same_statements_for_one_or_many(
    api: ApiClient, settings: Settings
) -> None:
    experiments = await three_experiments(api, settings)
    engine = make_async_engine(settings.database_url)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counts = []
    try:
        for page in (experiments[:1], experiments):
            statements.clear()
            async with make_sessionmaker(engine)() as session:
                await exposures_of(
                    session, api.project_id, [e["id"] for e in page], to_micros(datetime.now(UTC))
                )
            counts.append(len(statements))
    finally:
        await engine.dispose()
    assert counts[0] == counts[1] <= 4, counts  # project, experiments + flags, (actions), events
