"""A request id, one access-log line and the HTTP metrics per request.

`RequestObserver` does the work; `RequestMiddleware` applies it to the FastAPI stack, and the SDK
fast path (api/sdk_asgi.py, outside that stack) calls it inline for /flags and /batch, where it
must stay cheap: no wrapped `send`, no Request objects, no per-request dicts, metric children
bound once per (method, route, status) and reused.

- Request id: the caller's `X-Request-ID` when it is plain and short, else a generated one;
  returned in the `X-Request-ID` response header and carried by every log line of the request
  (observability.context) and into the workflow update (api/experiment_updates.py).
- Route label: the route template (`/api/projects/{project_id}/experiments/{experiment_id}/`),
  the SDK path (`/flags`), or `unmatched` for 404s: never the raw path.
- Access log: INFO for API calls; SDK traffic (thousands per second) at DEBUG, 5xx at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextvars import Token
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import hot, metrics
from observability.context import CURRENT, LogContext, accepted_request_id, new_request_id
from observability.hot import CounterChild

log = logging.getLogger("flagship.access")

_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _route_key(path: str) -> str:
    return path.rstrip("/") or "/"


def route_label(scope: Scope, sdk_paths: frozenset[str]) -> str:
    """The route template of a finished request (an SDK fast-path route is its own path)."""
    key = _route_key(scope["path"])
    if key in sdk_paths:
        return key
    return _template(scope) or "unmatched"


def _template(scope: Scope) -> str | None:
    # FastAPI >= 0.16x includes routers lazily: scope["route"] is the route as declared, without the
    # include prefix, and the full template is in its effective route context. Before, scope["route"]
    # was the prefixed copy.
    fastapi_scope = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        path = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if isinstance(path, str):
            return path
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


# For a route: given method and status, the extra counter child one such request moves, if any
# (flag evaluations on /flags), bound once per (method, route, status) like the HTTP ones.
RouteCounter = Callable[[str, int], CounterChild | None]


class RequestObserver:
    """Request id, log context, metrics and the access-log line of one request: what every HTTP
    request gets, whether RequestMiddleware or the SDK fast path (api/sdk_asgi.py) answers it."""

    __slots__ = ("_recorders", "metrics_enabled", "route_counters")

    def __init__(
        self, *, metrics_enabled: bool = True, route_counters: Mapping[str, RouteCounter] | None = None
    ) -> None:
        self.metrics_enabled = metrics_enabled
        self.route_counters = dict(route_counters or {})
        # One recorder per (method, route, status), bound on first use: labels() is not per request.
        self._recorders: dict[tuple[str, str, int], Callable[[float], None]] = {}

    @staticmethod
    def open(raw_request_id: bytes | None) -> tuple[str, Token[LogContext | None]]:
        """The request's id (the caller's when acceptable) and its log context, made current."""
        request_id = accepted_request_id(raw_request_id) if raw_request_id is not None else None
        if request_id is None:
            request_id = new_request_id()
        return request_id, CURRENT.set(LogContext(request_id))

    def close(
        self,
        token: Token[LogContext | None],
        method: str,
        path: str,
        route: str,
        status: int,
        elapsed: float,
        *,
        sdk: bool,
    ) -> None:
        """Count and log the finished request, then leave its log context."""
        try:
            if method not in _METHODS:
                method = "OTHER"  # the label set (and the cache) stays bounded whatever clients send
            if self.metrics_enabled:
                record = self._recorders.get((method, route, status))
                if record is None:
                    record = self._recorders[(method, route, status)] = self._bind(method, route, status)
                record(elapsed)
            level = logging.WARNING if status >= 500 else (logging.DEBUG if sdk else logging.INFO)
            if log.isEnabledFor(level):
                _access_line(level, method, path, route, status, elapsed)
        finally:
            CURRENT.reset(token)

    def _bind(self, method: str, route: str, status: int) -> Callable[[float], None]:
        extra = self.route_counters.get(route)
        return hot.recorder(
            metrics.HTTP_REQUESTS.labels(method, route, str(status)),
            metrics.HTTP_DURATION.labels(method, route),
            extra(method, status) if extra is not None else None,
        )


class RequestMiddleware:
    """The outermost middleware of the FastAPI stack (the SDK fast path, outside it, observes its
    own requests with the same RequestObserver)."""

    def __init__(self, app: ASGIApp, *, observer: RequestObserver) -> None:
        self.app = app
        self.observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_id = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                raw_id = value
                break
        request_id, token = self.observer.open(raw_id)
        header = (_HEADER, request_id.encode())
        status = 500  # what the server answers when the app raises before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = _template(scope) or "unmatched"
            self.observer.close(
                token, scope["method"], scope["path"], route, status, perf_counter() - started, sdk=False
            )


def _access_line(level: int, method: str, path: str, route: str, status: int, elapsed: float) -> None:
    # The path, never the query string: SDKs may send their token there.
    fields: dict[str, Any] = {
        "http_method": method,
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
    }
    log.log(level, "%s %s %d %.1f ms", method, path, status, elapsed * 1000, extra=fields)
