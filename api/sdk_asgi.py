"""A pure-ASGI fast path for the SDK endpoints (/flags, /decide, capture), ahead of FastAPI's stack.

Profiling showed the framework, not the work, dominating these requests: FastAPI's middleware layers,
the nested router match and Starlette's Request/Response objects cost more than evaluating a flag.
So `SdkFastPath` (outside the FastAPI stack; only tracing, when on, wraps it) answers these paths
from the ASGI scope, and hands everything else to the app untouched. Handlers get a minimal `SdkRequest` and return
bytes; they never raise for client errors.

Consequence: middleware added to the app *before* this one (so inside it) never sees SDK traffic.
So the request id, metrics and access log of SDK requests come from the RequestObserver this
class is given (observability/http.py), inline: no extra ASGI layer, no wrapped `send`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from api.body_limits import TOO_LARGE_REFUSAL, BodyTooLarge, read_capped
from observability.http import RequestObserver

log = logging.getLogger("flagship.api")

_JSON = (b"content-type", b"application/json")
# The only request headers the SDK handlers read, and the caller's request id.
_WANTED_HEADERS = frozenset({b"content-encoding", b"content-type", b"authorization", b"origin"})
_REQUEST_ID = b"x-request-id"


@dataclass(slots=True)
class SdkRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    state: Any  # the app's state: flag_cache, event_writer, engine


@dataclass(slots=True)
class SdkResponse:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def bearer_token(request: SdkRequest) -> str | None:
    """The credential of `Authorization: Bearer <value>`, if the request carries one."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


Handler = Callable[[SdkRequest], Awaitable[SdkResponse]]
Routes = Mapping[str, tuple[frozenset[str], Handler]]


def json_response(body: Any, status: int = 200) -> SdkResponse:
    return SdkResponse(status, orjson.dumps(body))


def error_response(status: int, type_: str, code: str, detail: str, attr: str | None = None) -> SdkResponse:
    return json_response({"type": type_, "code": code, "detail": detail, "attr": attr}, status)


def route_key(path: str) -> str:
    """Both spellings of a path are one route: SDKs disagree about the slash, and a redirect would drop
    the POST body in some clients."""
    return path.rstrip("/") or "/"


def _headers(scope: Scope) -> tuple[dict[str, str], bytes | None]:
    """The headers the handlers read (ASGI gives names lower-cased), and the raw X-Request-ID."""
    found: dict[str, str] = {}
    request_id = None
    for raw_name, raw_value in scope["headers"]:
        if raw_name in _WANTED_HEADERS:
            found[raw_name.decode("latin-1")] = raw_value.decode("latin-1")
        elif raw_name == _REQUEST_ID:
            request_id = raw_value
    return found, request_id


def _cors(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Browsers (posthog-js) call these endpoints cross-origin, as they do PostHog's own."""
    origin = headers.get("origin")
    if not origin:
        return []
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin"),
    ]


_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
    (b"access-control-allow-headers", b"content-type, content-encoding, authorization"),
    (b"access-control-max-age", b"86400"),
]


class SdkFastPath:
    def __init__(self, app: ASGIApp, routes: Routes, observer: RequestObserver | None = None) -> None:
        self.app = app
        self.routes = {route_key(path): spec for path, spec in routes.items()}
        self.observer = observer or RequestObserver(metrics_enabled=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = route_key(scope["path"]) if scope["type"] == "http" else ""
        route = self.routes.get(key)
        if route is None:
            await self.app(scope, receive, send)
            return
        started = perf_counter()
        headers, raw_id = _headers(scope)
        request_id, token = self.observer.open(raw_id)
        status = 500  # what uvicorn answers if sending fails below
        try:
            response = await self._answer(scope, receive, route, headers)
            if response is None:
                status = 499  # the client went away before its body arrived (nginx's code for it)
                return
            status = response.status
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        _JSON,
                        (b"content-length", str(len(response.body)).encode()),
                        (b"x-request-id", request_id.encode()),
                        *response.headers,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": response.body})
        finally:
            self.observer.close(
                token, scope["method"], scope["path"], key, status, perf_counter() - started, sdk=True
            )

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        route: tuple[frozenset[str], Handler],
        headers: dict[str, str],
    ) -> SdkResponse | None:
        methods, handler = route
        method = scope["method"]
        if method == "OPTIONS":
            return SdkResponse(200, b"", _cors(headers) + _PREFLIGHT)
        if method not in methods:
            detail = f'Method "{method}" not allowed.'
            return error_response(405, "invalid_request", "method_not_allowed", detail)
        try:
            body = await read_capped(scope, receive)
        except BodyTooLarge:
            return SdkResponse(413, TOO_LARGE_REFUSAL.body())
        if body is None:
            return None  # the client went away
        query = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
        request = SdkRequest(method, scope["path"], query, headers, body, scope["app"].state)
        try:
            response = await handler(request)
        except Exception:
            log.exception("unhandled error on %s", scope["path"])
            response = error_response(500, "server_error", "error", "A server error occurred.")
        response.headers.extend(_cors(headers))
        return response
