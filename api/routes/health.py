"""`GET /_health`: 200 once the database and Temporal (and ClickHouse, when it holds the events)
answer, 503 (with which one) otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.routing import FlexRouter
from api.temporal import TemporalConnection
from db.clickhouse.store import ClickHouseEvents

router = FlexRouter(tags=["health"])

# Health must answer quickly even when a dependency hangs: load balancers time out first.
CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(request: Request) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            async with request.app.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure is "unavailable" here, with its kind for operators
        return f"unavailable ({type(exc).__name__})"


async def _check_temporal(temporal: TemporalConnection) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            client = await temporal.client()
            ok = await client.service_client.check_health()
        return "ok" if ok else "unavailable (not serving)"
    except Exception as exc:
        return f"unavailable ({type(exc).__name__})"


async def _check_clickhouse(events: ClickHouseEvents) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return await events.health()
    except TimeoutError:
        return "unavailable (TimeoutError)"


@router.get("/_health", summary="Liveness and dependency check")
async def health(request: Request) -> JSONResponse:
    checks = {"database": _check_database(request), "temporal": _check_temporal(request.app.state.temporal)}
    events: ClickHouseEvents | None = request.app.state.events
    if events is not None:  # EVENTS_BACKEND=clickhouse: capture and results depend on it
        checks["clickhouse"] = _check_clickhouse(events)
    states = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
    healthy = all(state == "ok" for state in states.values())
    body: dict[str, Any] = {"status": "ok" if healthy else "unavailable", **states}
    return JSONResponse(body, status_code=200 if healthy else 503)
