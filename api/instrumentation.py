"""The API's hooks into observability/: middleware, `GET /metrics`, SDK-handler metrics, and the
request id and outcome of every workflow update (README "Operating Flagship")."""

from __future__ import annotations

from typing import TypeVar

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from pydantic import BaseModel

from api.errors import ApiError, RawError
from api.routes import capture
from api.sdk_asgi import Handler, Routes, SdkFastPath, SdkRequest, SdkResponse
from observability import metrics, tracing
from observability.context import bind, current_request_id
from observability.hot import CounterChild
from observability.http import RequestMiddleware, RequestObserver, RouteCounter
from settings import Settings

M = TypeVar("M", bound=BaseModel)

# FastAPI's native OpenTelemetry would open a second server span per request as soon as a tracer
# provider is set, record query strings (SDKs send their token there) and look its providers up on
# every request, /flags included. Tracing is observability/tracing.py's, so FastAPI's stays off.
FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

FLAG_ENDPOINTS = {"/flags": "flags", "/decide": "decide"}
_CAPTURE_OUTCOMES = {
    200: "accepted",
    400: "invalid",
    401: "unauthorized",
    413: "too_large",
    503: "unavailable",
}


def _flag_evaluations(endpoint: str) -> RouteCounter:
    """Counted by the request middleware from the status, with no wrapper around the handler: the
    cheapest place on the hottest path. Their latency is flagship_http_request_duration_seconds of
    the route."""

    def child(method: str, status: int) -> CounterChild | None:
        if method != "POST":
            return None  # preflights and the empty GET answer evaluate nothing
        outcome = "evaluated" if status == 200 else "rejected" if status < 500 else "error"
        return metrics.FLAG_EVALUATIONS.labels(endpoint, outcome)

    return child


def route_counters() -> dict[str, RouteCounter]:
    return {route: _flag_evaluations(name) for route, name in FLAG_ENDPOINTS.items()}


def _capture_handler(handler: Handler) -> Handler:
    outcomes = {status: metrics.CAPTURE_BATCHES.labels(name) for status, name in _CAPTURE_OUTCOMES.items()}
    error = metrics.CAPTURE_BATCHES.labels("error")

    async def observed(request: SdkRequest) -> SdkResponse:
        response = await handler(request)
        outcomes.get(response.status, error).inc()
        return response

    return observed


def instrument_sdk_routes(routes: Routes, settings: Settings) -> Routes:
    """The SDK fast-path handlers, the capture ones counting their outcomes (when metrics are on)."""
    if not settings.metrics_enabled:
        return routes
    return {
        path: (methods, _capture_handler(handler) if path in capture.ROUTES else handler)
        for path, (methods, handler) in routes.items()
    }


async def _metrics() -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


def install(app: FastAPI, settings: Settings, sdk_routes: Routes) -> None:
    """The app's outer layers, outermost first: tracing (when on), the SDK fast path answering
    /flags, /decide and capture, then RequestMiddleware in front of the FastAPI stack. One
    RequestObserver gives both paths their request ids, metrics and access log."""
    tracing.configure(settings, "flagship-api")
    if settings.metrics_enabled:
        app.add_api_route("/metrics", _metrics, methods=["GET"], include_in_schema=False)
    observer = RequestObserver(metrics_enabled=settings.metrics_enabled, route_counters=route_counters())
    # add_middleware puts each one outside the ones added before it.
    app.add_middleware(RequestMiddleware, observer=observer)
    app.add_middleware(SdkFastPath, routes=instrument_sdk_routes(sdk_routes, settings), observer=observer)
    if tracing.enabled():
        app.add_middleware(tracing.TracingMiddleware, sdk_paths=list(sdk_routes))


def prepare_update(arg: M, project_id: int, experiment_id: int, workflow_id: str) -> M:
    """The request id travels in the update's input (logged by the worker, shown in the Temporal UI)."""
    bind(project_id=project_id, experiment_id=experiment_id, workflow_id=workflow_id)
    request_id = current_request_id()
    if (
        request_id is not None
        and "request_id" in type(arg).model_fields
        and getattr(arg, "request_id", None) is None
    ):
        return arg.model_copy(update={"request_id": request_id})
    return arg


def transition_outcome(error: ApiError | RawError) -> str:
    """How a refused update is counted in flagship_experiment_transitions_total."""
    status = error.status
    if isinstance(error, RawError) and status == 409 and "change_request_id" in (error.body or {}):
        return "approval_required"
    if status == 409:
        return "conflict"
    if status == 404:
        return "not_found"
    if status >= 500:
        return "unavailable"
    return "rejected"
