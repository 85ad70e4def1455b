"""The ClickHouse backend's storage, run through ClickHouse's own engine (chdb): migrations and
retention DDL, capture into the MergeTree table (dedup of retries, the bound on pending rows, event
definitions in SQL), moving existing events over, and the SQL text the analysis is built from."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from db.bootstrap import Credentials
from db.clickhouse import sql
from db.clickhouse.client import ClickHouse
from db.clickhouse.export import Progress, export_events
from db.clickhouse.filters import filter_sql
from db.clickhouse.schema import current_ttl, migrate
from db.clickhouse.store import ClickHouseEvents
from db.clickhouse.writer import ClickHouseEventWriter, EventBacklogFull
from db.engine import make_sessionmaker
from db.events import EventRow
from db.metric_analysis import analysis_context, metric_results
from db.tables import EventDefinition, Experiment, FeatureFlag
from domain.metric_engine import ExperimentSpec, MetricEngineError, events_from_rows, to_micros
from domain.metric_engine.filters import TEST_ACCOUNT_FILTERS, filter_mask, filters_mask
from settings import Settings, load_settings
from tests.domain.test_metric_engine_filters import ROWS as FILTER_ROWS
from tests.domain.test_metric_engine_filters import test_operators
from tests.support.analysis import Row, database, store_events
from tests.support.clickhouse import assert_same, insert_rows, new_database

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with database(settings) as opened:
        yield opened


def row(
    team_id: int, name: str = "purchase", user: str = "u1", when: datetime = T0, **props: Any
) -> EventRow:
    return EventRow(str(uuid.uuid4()), team_id, name, user, when, props)


def stored(ch: ClickHouse, final: bool = True) -> list[list[Any]]:
    return ch.rows(
        f"SELECT toString(uuid), event, distinct_id, toUnixTimestamp64Micro(timestamp), properties "
        f"FROM {ch.table} {'FINAL' if final else ''} ORDER BY seq"
    )


# ---- schema ------------------------------------------------------------------------------------


def test_migrations_create_the_table_once_and_retention_follows_the_setting(clickhouse_url: str) -> None:
    ch = new_database(clickhouse_url)
    assert migrate(ch) == []  # already applied by new_database
    create = ch.rows(f"SHOW CREATE TABLE {ch.table}")[0][0]
    assert "ReplacingMergeTree(first_seq)" in create and "PARTITION BY toYYYYMM(timestamp)" in create
    assert "ORDER BY (team_id, event, toDate(timestamp), uuid)" in create
    assert current_ttl(ch) is None
    migrate(ch, ttl_days=30)
    assert (
        current_ttl(ch) == 30
        and "TTL toDateTime(timestamp) + toIntervalDay(30)" in ch.rows(f"SHOW CREATE TABLE {ch.table}")[0][0]
    )
    migrate(ch, ttl_days=7)
    assert current_ttl(ch) == 7
    migrate(ch, ttl_days=None)
    assert current_ttl(ch) is None
    with pytest.raises(ValueError, match="positive"):
        migrate(ch, ttl_days=0)


def test_ttl_deletes_expired_events_on_merge(clickhouse_url: str) -> None:
    ch = new_database(clickhouse_url, ttl_days=30)
    now = datetime.now(UTC)
    insert_rows(
        ch, 1, [("old", "u", now - timedelta(days=40), {}), ("new", "u", now - timedelta(days=2), {})]
    )
    ch.command(f"OPTIMIZE TABLE {ch.table} FINAL")
    assert [r[1] for r in stored(ch)] == ["new"]


# ---- capture -----------------------------------------------------------------------------------


async def test_writer_stores_rows_and_event_definitions(
    clickhouse: ClickHouse, engine: AsyncEngine, credentials: Credentials
) -> None:
    writer = ClickHouseEventWriter(clickhouse, engine).start()
    try:
        rows = [
            row(credentials.project_id, "signup"),
            row(
                credentials.project_id, "purchase", "u2", T0 + timedelta(seconds=1), amount=7.5, nul="a\x00b"
            ),
        ]
        await asyncio.gather(writer.write(rows[:1]), writer.write(rows[1:]))
    finally:
        await writer.stop()
    got = stored(clickhouse)
    assert [(r[0], r[1], r[2]) for r in got] == [(r.uuid, r.event, r.distinct_id) for r in rows]
    assert got[1][3] == to_micros(T0 + timedelta(seconds=1))
    assert got[1][4] == '{"amount":7.5,"nul":"a\\ufffdb"}'  # stored as the SQL backend stores it
    async with make_sessionmaker(engine)() as session:
        names = {d.name for d in (await session.exec(select(EventDefinition))).all()}
    assert names >= {"signup", "purchase"}


async def test_a_retried_event_counts_once_and_the_first_copy_is_kept(
    clickhouse: ClickHouse, engine: AsyncEngine, credentials: Credentials
) -> None:
    original = row(credentials.project_id, amount=1)
    retry = original._replace(properties={"amount": 2})  # same uuid, same day: the SDK's retry
    writer = ClickHouseEventWriter(clickhouse, engine).start()
    try:
        await writer.write([original])
        await writer.write([retry])
    finally:
        await writer.stop()
    assert len(stored(clickhouse, final=False)) == 2  # two inserts, two parts, not merged yet
    assert [r[4] for r in stored(clickhouse)] == ['{"amount":1}']  # FINAL: what every analysis reads
    clickhouse.command(f"OPTIMIZE TABLE {clickhouse.table} FINAL")
    assert [r[4] for r in stored(clickhouse, final=False)] == ['{"amount":1}']


async def test_writes_past_the_bound_are_refused_at_once(
    clickhouse: ClickHouse, engine: AsyncEngine, credentials: Credentials
) -> None:
    writer = ClickHouseEventWriter(clickhouse, engine, max_pending_rows=10)  # not started: nothing drains

    async def overflow_then_drain() -> None:
        await asyncio.sleep(0)  # the first write is queued: 8 rows pending
        with pytest.raises(EventBacklogFull):
            await writer.write([row(credentials.project_id) for _ in range(3)])
        writer.start()

    try:
        async with asyncio.timeout(30):
            await asyncio.gather(
                writer.write([row(credentials.project_id) for _ in range(8)]), overflow_then_drain()
            )
        await writer.write([row(credentials.project_id) for _ in range(10)])  # drained: room again
    finally:
        await writer.stop()
    assert len(stored(clickhouse)) == 18


# ---- moving existing events --------------------------------------------------------------------

FLAG = "export-flag"
MEAN = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "source": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
}


async def _experiment(engine: AsyncEngine, project_id: int) -> Experiment:
    async with make_sessionmaker(engine)() as session:
        filters = {
            "multivariate": {
                "variants": [
                    {"key": "control", "rollout_percentage": 50},
                    {"key": "test", "rollout_percentage": 50},
                ]
            }
        }
        flag = FeatureFlag(team_id=project_id, key=FLAG, filters=filters)
        session.add(flag)
        await session.flush()
        assert flag.id is not None
        experiment = Experiment(
            team_id=project_id, name="e", feature_flag_id=flag.id, start_date=T0, metrics=[MEAN]
        )
        session.add(experiment)
        await session.commit()
        return experiment


async def test_export_copies_every_event_in_batches_and_results_stay_the_same(
    clickhouse: ClickHouse, engine: AsyncEngine, settings: Settings, credentials: Credentials
) -> None:
    project = credentials.project_id
    rows: list[Row] = [
        (
            "$feature_flag_called",
            f"u{i}",
            T0 + timedelta(hours=i),
            {"$feature_flag": FLAG, "$feature_flag_response": "test" if i % 2 else "control"},
        )
        for i in range(5)
    ]
    rows += [("purchase", f"u{i}", T0 + timedelta(hours=i, minutes=5), {"amount": i * 1.5}) for i in range(5)]
    rows.append(("purchase", "u1", T0 + timedelta(hours=1, minutes=5), {"amount": 100}))  # a tie
    await store_events(settings, project, rows)
    experiment = await _experiment(engine, project)
    reports: list[Progress] = []
    done = await export_events(engine, clickhouse, reports.append, batch_size=4)
    assert [p.copied for p in reports] == [4, 8, 11] and {p.total for p in reports} == {11}
    assert done.copied == 11 and len(stored(clickhouse)) == 11
    again = await export_events(engine, clickhouse, reports.append, batch_size=100, after_id=done.last_id)
    assert again.copied == 0
    await export_events(engine, clickhouse, reports.append)  # copying twice changes nothing
    as_of = [to_micros(T0 + timedelta(hours=h)) for h in (2, 6, 30)]
    results = []
    for events in (None, ClickHouseEvents(clickhouse)):
        async with make_sessionmaker(engine, events=events)() as session:
            context = await analysis_context(session, experiment, [MEAN])
            results.append(await metric_results(session, context, MEAN, as_of))
    assert_same(results[0], results[1])
    assert results[0][-1]["baseline"]["number_of_samples"] == 3


# ---- the SQL text ------------------------------------------------------------------------------

HOSTILE = [
    "it's",
    'say "hi"',
    "back\\slash",
    "new\nline",
    "tab\tnul\x00",
    "\\'; DROP TABLE x; --",
    "é ☃ 𝄞",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_string_literals_round_trip_exactly(clickhouse: ClickHouse, text: str) -> None:
    assert clickhouse.rows(f"SELECT {sql.string(text)}") == [[text]]


def _passing(ch: ClickHouse, team: int, condition: str) -> list[str]:
    query = f"SELECT distinct_id FROM {ch.table} FINAL WHERE team_id = {team} AND ({condition}) ORDER BY seq"
    return [r[0] for r in ch.rows(query)]


def test_property_filters_select_the_same_events(clickhouse: ClickHouse) -> None:
    """Every operator case of the embedded engine's filter tests, and the test-account rules."""
    insert_rows(clickhouse, 1, FILTER_ROWS)
    events = events_from_rows(FILTER_ROWS)
    users = [r[1] for r in FILTER_ROWS]
    for mark in test_operators.pytestmark:  # type: ignore[attr-defined]
        for operator, value, _expected in mark.args[1]:
            prop = {"key": "v", "operator": operator, "value": value, "type": "event"}
            if operator.startswith("semver_"):
                with pytest.raises(MetricEngineError, match="not supported by the ClickHouse"):
                    filter_sql(prop)
                continue
            expected = [u for u, keep in zip(users, filter_mask(events, prop), strict=True) if keep]
            assert _passing(clickhouse, 1, filter_sql(prop)) == expected, prop
    hosts_and_emails: list[dict[str, Any]] = [
        {"$host": "localhost:3000"},
        {"$host": "127.0.0.1"},
        {"$host": "app.localhost.io", "email": "c@Example.com"},
        {"email": "d@qa.shop.test"},
        {"email": "e@notexample.com", "$host": "shop.io"},
        {"email": None, "$host": 5},
        {},
    ]
    accounts: list[Row] = [
        ("e", user, T0, props) for user, props in zip("abcdefg", hosts_and_emails, strict=True)
    ]
    insert_rows(clickhouse, 2, accounts)
    kept = [
        r[1]
        for r, keep in zip(
            accounts, filters_mask(events_from_rows(accounts), TEST_ACCOUNT_FILTERS), strict=True
        )
        if keep
    ]
    assert (
        _passing(clickhouse, 2, " AND ".join(filter_sql(f) for f in TEST_ACCOUNT_FILTERS))
        == kept
        == ["e", "f", "g"]
    )


def test_a_regex_re2_cannot_run_is_the_metric_s_error(clickhouse: ClickHouse) -> None:
    exposure: Row = (
        "$feature_flag_called",
        "u",
        T0,
        {"$feature_flag": "f", "$feature_flag_response": "control"},
    )
    insert_rows(clickhouse, 3, [exposure, ("e", "u", T0 + timedelta(hours=1), {"v": "ab"})])
    metric = {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "source": {
            "kind": "EventsNode",
            "event": "e",
            "properties": [{"key": "v", "operator": "regex", "value": "a(?=b)"}],
        },
    }
    spec = ExperimentSpec(flag_key="f", variant_keys=("control", "test"), start=to_micros(T0))
    with pytest.raises(MetricEngineError, match="regular expression"):
        ClickHouseEvents(clickhouse).metric_series(3, spec, metric, [to_micros(T0 + timedelta(days=1))])


def test_events_backend_settings() -> None:
    assert load_settings({}).events_backend == "sql"
    configured = load_settings(
        {"EVENTS_BACKEND": "ClickHouse", "CLICKHOUSE_URL": "http://u:p@ch:8123", "CLICKHOUSE_TTL_DAYS": "90"}
    )
    assert (configured.events_backend, configured.clickhouse_database, configured.clickhouse_ttl_days) == (
        "clickhouse",
        "flagship",
        90,
    )
    with pytest.raises(ValueError, match="CLICKHOUSE_URL"):
        load_settings({"EVENTS_BACKEND": "clickhouse"})
    with pytest.raises(ValueError, match="EVENTS_BACKEND"):
        load_settings({"EVENTS_BACKEND": "duckdb"})
    with pytest.raises(ValueError, match="CLICKHOUSE_DATABASE"):
        ClickHouse("http://ch:8123", "x; DROP")
