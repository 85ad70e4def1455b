"""The FastAPI application: routers, error format and the lifespan that owns engine and client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from temporalio.client import Client

from api import console, instrumentation, openapi_docs
from api.body_limits import BodyGuard
from api.errors import install_error_handlers
from api.flag_cache import FlagCache
from api.query_limits import QueryLimiter
from api.routes import (
    accounts,
    approvals,
    capture,
    cohorts,
    experiment_extras,
    experiments,
    feature_flags,
    flags_eval,
    health,
    holdouts,
    llm_prompts,
    local_evaluation,
    query,
    saved_metrics,
    timeseries,
)
from api.routes import console as console_routes
from api.temporal import TemporalConnection
from db.clickhouse.store import ClickHouseEvents
from db.engine import make_async_engine, make_sessionmaker
from db.events import EventWriter
from observability.tracing import instrument_engine
from settings import Settings, load_settings

# Routers mounted under both /api/projects/{project_id} and its alias /api/environments/{project_id}.
# experiment_extras comes before experiments: routes match in order, and `/experiments/stats/` must not
# be taken for `/experiments/{experiment_id}/`.
PROJECT_ROUTERS: tuple[APIRouter, ...] = (
    experiment_extras.router,
    feature_flags.router,
    experiments.router,
    approvals.router,
    holdouts.router,
    saved_metrics.router,
    cohorts.router,
    llm_prompts.router,
    timeseries.router,
    query.router,
)


def create_app(settings: Settings | None = None, *, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = instrument_engine(make_async_engine(settings.database_url))  # SQL spans when tracing
        app.state.settings = settings
        app.state.engine = engine
        # EVENTS_BACKEND=clickhouse: capture writes there and results are computed there.
        events = app.state.events = ClickHouseEvents.from_settings(settings)
        app.state.sessionmaker = make_sessionmaker(engine, events=events)
        app.state.temporal = TemporalConnection(settings, temporal_client)
        app.state.flag_cache = await FlagCache.start(engine)
        app.state.query_limiter = QueryLimiter(
            app.state.sessionmaker, settings.query_concurrency, settings.query_timeout_seconds
        )
        bound = settings.capture_queue_max_events
        app.state.event_writer = (
            events.writer(engine, max_pending_rows=bound)
            if events
            else EventWriter(engine, max_pending_rows=bound)
        ).start()
        try:
            yield
        finally:
            await app.state.event_writer.stop()
            await app.state.flag_cache.stop()
            await engine.dispose()
            if events is not None:
                events.close()

    app = FastAPI(
        title="Flagship",
        version="0.1.0",
        summary="PostHog-compatible experiments on Temporal",
        openapi_url="/api/schema/",
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
        telemetry=instrumentation.FASTAPI_TELEMETRY,
    )
    install_error_handlers(app)
    # Innermost of the middleware: bodies past the cap, too deep or with lone surrogates never reach
    # FastAPI's parser, and the request middleware still logs and counts the refusal.
    app.add_middleware(BodyGuard)
    # /flags, /decide and capture are answered ahead of the FastAPI stack (api/sdk_asgi.py), and
    # every request gets its request id, access log, metrics and trace (api/instrumentation.py).
    instrumentation.install(app, settings, {**flags_eval.ROUTES, **capture.ROUTES})
    app.include_router(local_evaluation.router)
    app.include_router(health.router)
    app.include_router(accounts.router)
    for router in PROJECT_ROUTERS:
        app.include_router(router, prefix="/api/projects/{project_id}")
        app.include_router(router, prefix="/api/environments/{project_id}", include_in_schema=False)
    # The web console (static, strict CSP) and the few JSON endpoints it adds (api/routes/console.py).
    app.include_router(console_routes.router)
    app.include_router(console_routes.project_router, prefix="/api/projects/{project_id}")
    console.mount(app)
    openapi_docs.install(app)
    return app
