"""The FastAPI application: routers, error format and the lifespan that owns engine and client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from temporalio.client import Client

from api.errors import install_error_handlers
from api.routes import accounts, experiments, feature_flags, health
from api.temporal import TemporalGateway
from db.engine import make_async_engine, make_sessionmaker
from settings import Settings, load_settings

# Routers mounted under both /api/projects/{project_id} and its alias /api/environments/{project_id}.
PROJECT_ROUTERS: tuple[APIRouter, ...] = (feature_flags.router, experiments.router)


def create_app(settings: Settings | None = None, *, temporal_client: Client | None = None) -> FastAPI:
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_async_engine(settings.database_url)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.temporal = TemporalGateway(settings, temporal_client)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Flagship",
        version="0.1.0",
        summary="PostHog-compatible experiments on Temporal",
        openapi_url="/api/schema/",
        docs_url="/docs",
        redoc_url=None,
        redirect_slashes=False,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(accounts.router)
    for router in PROJECT_ROUTERS:
        app.include_router(router, prefix="/api/projects/{project_id}")
        app.include_router(router, prefix="/api/environments/{project_id}", include_in_schema=False)
    return app
