"""With tracing on, one launch is one connected trace: HTTP span -> update -> activity -> SQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from asgi_lifespan import LifespanManager
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client

from api.app import create_app
from db.bootstrap import Credentials
from db.engine import make_async_engine
from observability import tracing
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.experiments import action, create_experiment
from worker import build_worker
from workflows.client import connect

EXPORTER = InMemorySpanExporter()  # one per session: a provider's processors cannot be removed
LAUNCH = "POST /api/projects/{project_id}/experiments/{experiment_id}/launch/"
CHAIN = (
    LAUNCH,
    "StartWorkflowUpdate:launch",
    "HandleUpdate:launch",
    "StartActivity:experiment.transition",
    "RunActivity:experiment.transition",
)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    tracing.enable(EXPORTER, batch=False)
    EXPORTER.clear()
    try:
        yield EXPORTER
    finally:
        tracing.disable()
        EXPORTER.clear()


@pytest_asyncio.fixture(loop_scope="session")
async def traced_api(
    spans: InMemorySpanExporter, settings: Settings, credentials: Credentials, temporal_client: Client
) -> AsyncIterator[ApiClient]:
    """API and worker on a client made while tracing is on (so it carries the OpenTelemetry plugin)."""
    client = await connect(temporal_client.service_client.config.target_host, temporal_client.namespace)
    engine = make_async_engine(settings.database_url)
    app = create_app(settings, temporal_client=client)
    try:
        async with LifespanManager(app) as manager, build_worker(client, settings, engine):
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                yield ApiClient(http, credentials.personal_api_key, credentials.project_id)
    finally:
        await engine.dispose()


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def finished(exporter: InMemorySpanExporter, name: str) -> tuple[ReadableSpan, ...]:
    for _ in range(50):
        spans = exporter.get_finished_spans()
        if by_name(spans, name):
            return spans
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {name} span among {[s.name for s in exporter.get_finished_spans()]}")


async def test_a_launch_is_one_trace_from_http_to_sql(
    traced_api: ApiClient, spans: InMemorySpanExporter
) -> None:
    exp = await create_experiment(traced_api)
    spans.clear()
    r = await action(traced_api, exp["id"], "launch", headers={"X-Request-ID": "trace-me"})
    assert r.status_code == 200, r.text
    recorded = await finished(spans, "RunActivity:experiment.transition")

    (http,) = by_name(recorded, LAUNCH)
    assert http.attributes is not None and http.attributes["flagship.request_id"] == "trace-me"
    assert http.attributes["http.response.status_code"] == 200
    trace_id = http.context.trace_id
    parent = http
    for name in CHAIN[1:]:
        (child,) = [
            s for s in by_name(recorded, name) if s.parent and s.parent.span_id == parent.context.span_id
        ]
        assert child.context.trace_id == trace_id, name
        parent = child
    sql = [s for s in recorded if s.parent and s.parent.span_id == parent.context.span_id]
    assert {"SELECT", "UPDATE"} <= {s.name for s in sql}, [s.name for s in sql]
    assert all(s.context.trace_id == trace_id for s in sql)


async def test_tracing_off_registers_nothing(settings: Settings, temporal_client: Client) -> None:
    assert not tracing.enabled()
    assert tracing.temporal_plugins() == []
    app = create_app(settings, temporal_client=temporal_client)
    assert all(getattr(m, "cls", None) is not tracing.TracingMiddleware for m in app.user_middleware)
    engine = tracing.instrument_engine(make_async_engine(settings.database_url))
    try:
        from sqlalchemy import event

        assert not event.contains(engine.sync_engine, "before_cursor_execute", tracing._before_execute)
    finally:
        await engine.dispose()
