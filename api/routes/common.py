"""Dependencies shared by the experiment-adjacent routers (holdouts, saved metrics, extras)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Depends, Header, Request

from api.temporal import TemporalConnection


async def _temporal(request: Request) -> TemporalConnection:  # async: no threadpool hop
    temporal: TemporalConnection = request.app.state.temporal
    return temporal


TemporalDep = Annotated[TemporalConnection, Depends(_temporal)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retries with the same key return the first result."),
]
# Bodies are read as raw JSON: field errors must come out in DRF's order and words (api/experiments/fields.py).
RawBody = Annotated[Any, Body()]
