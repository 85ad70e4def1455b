"""The outermost ASGI middleware: a request id, one access-log line and the HTTP metrics per request.

It wraps the SDK fast path too (api/sdk_asgi.py), so /flags and /batch are measured; there it
stays cheap: no Request objects, no per-request dicts, metric children bound once per
(method, route, status) and reused.

- Request id: the caller's `X-Request-ID` when it is plain and short, else a generated one;
  returned in the `X-Request-ID` response header and carried by every log line of the request
  (observability.context) and into the workflow update (api/experiment_gateway.py).
- Route label: the route template (`/api/projects/{project_id}/experiments/{experiment_id}/`),
  the SDK path (`/flags`), or `unmatched` for 404s: never the raw path.
- Access log: INFO for API calls; SDK traffic (thousands per second) at DEBUG, 5xx at WARNING.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import metrics
from observability.context import CURRENT, LogContext, accepted_request_id, new_request_id
from observability.hot import CounterChild, HistogramChild

log = logging.getLogger("flagship.access")
_Children = tuple[CounterChild, HistogramChild, CounterChild | None]

_HEADER = b"x-request-id"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _route_key(path: str) -> str:
    return path.rstrip("/") or "/"


def route_label(scope: Scope, sdk_paths: frozenset[str]) -> tuple[str, bool]:
    """The route template of a finished request, and whether it was an SDK fast-path route."""
    key = _route_key(scope["path"])
    if key in sdk_paths:
        return key, True
    return _template(scope) or "unmatched", False


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


class RequestMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        sdk_paths: Iterable[str] = (),
        metrics_enabled: bool = True,
        route_counters: Mapping[str, RouteCounter] | None = None,
    ) -> None:
        self.app = app
        self.sdk_paths = frozenset(_route_key(p) for p in sdk_paths)
        self.metrics_enabled = metrics_enabled
        self.route_counters = dict(route_counters or {})
        self._children: dict[tuple[str, str, int], _Children] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Inlined rather than helper calls: this runs for every /flags answer.
        request_id = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                request_id = accepted_request_id(value)
                break
        if request_id is None:
            request_id = new_request_id()
        token = CURRENT.set(LogContext(request_id))
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
            self._finish(scope, status, perf_counter() - started)
            CURRENT.reset(token)

    def _finish(self, scope: Scope, status: int, elapsed: float) -> None:
        route = scope["path"].rstrip("/") or "/"
        sdk = route in self.sdk_paths
        if not sdk:
            route = _template(scope) or "unmatched"
        method = scope["method"]
        if method not in _METHODS:
            method = "OTHER"  # the label set (and this cache) stays bounded whatever clients send
        if self.metrics_enabled:
            children = self._children.get((method, route, status))
            if children is None:
                children = self._children[(method, route, status)] = self._bind(method, route, status)
            children[0].inc()
            children[1].observe(elapsed)
            if children[2] is not None:
                children[2].inc()
        level = logging.WARNING if status >= 500 else (logging.DEBUG if sdk else logging.INFO)
        if log.isEnabledFor(level):
            _access_line(level, method, scope, route, status, elapsed)

    def _bind(self, method: str, route: str, status: int) -> _Children:
        extra = self.route_counters.get(route)
        return (
            metrics.HTTP_REQUESTS.labels(method, route, str(status)),
            metrics.HTTP_DURATION.labels(method, route),
            extra(method, status) if extra is not None else None,
        )


def _access_line(level: int, method: str, scope: Scope, route: str, status: int, elapsed: float) -> None:
    # The path, never the query string: SDKs may send their token there.
    fields: dict[str, Any] = {
        "http_method": method,
        "path": scope["path"],
        "route": route,
        "status": status,
        "duration_ms": round(elapsed * 1000, 2),
    }
    log.log(level, "%s %s %d %.1f ms", method, scope["path"], status, elapsed * 1000, extra=fields)
