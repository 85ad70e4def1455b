"""OpenTelemetry traces from the HTTP request through the workflow update to the activity and its SQL.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set, and then nothing is registered at all: no ASGI
middleware, no Temporal plugin, no SQL listeners. On, spans go to `<endpoint>/v1/traces` over
OTLP/HTTP, and one launch gives one trace:

    POST /api/projects/{project_id}/experiments/{experiment_id}/launch/      (TracingMiddleware)
      StartWorkflowUpdate:launch                                              (API's Temporal client)
        HandleUpdate:launch                                                   (worker, the workflow)
          StartActivity:experiment.transition -> RunActivity:experiment.transition
            SELECT / UPDATE / INSERT ...                                      (instrument_engine)

The Temporal side is `temporalio.contrib.opentelemetry.OpenTelemetryPlugin`, not the legacy
`TracingInterceptor`: the legacy one parents an update handler's spans to the span that *started*
the workflow (only linking the update's caller), so for a long-lived experiment workflow every
launch, pause and end would land in the trace of its creation. The plugin parents them to the
update's own caller, and needs a replay-safe provider (`create_tracer_provider`) set globally.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.plugin import SimplePlugin

from observability import logs
from observability.http import route_label
from settings import Settings

TRACER_NAME = "flagship"
_PROPAGATED = frozenset({b"traceparent", b"tracestate", b"baggage"})


class _State:
    provider: Any = None  # the ReplaySafeTracerProvider, created once per process
    enabled = False
    exporters: set[int] = set()


def enabled() -> bool:
    return _State.enabled


def enable(exporter: SpanExporter, *, service_name: str = "flagship", batch: bool = True) -> None:
    """Start recording spans to `exporter` (tests pass an in-memory one, `batch=False`)."""
    if _State.provider is None:
        from opentelemetry.sdk.resources import Resource
        from temporalio.contrib.opentelemetry import create_tracer_provider

        # OTEL_SERVICE_NAME, when set, names the service instead (the SDK reads it).
        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        _State.provider = create_tracer_provider(resource=Resource.create(named))
        trace.set_tracer_provider(_State.provider)
    if id(exporter) not in _State.exporters:
        _State.exporters.add(id(exporter))
        _State.provider.add_span_processor(
            BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
        )
    _State.enabled = True
    logs.trace_ids = _current_ids
    if not any(
        isinstance(f, _EvictionDetachNoise) for f in logging.getLogger("opentelemetry.context").filters
    ):
        logging.getLogger("opentelemetry.context").addFilter(_EvictionDetachNoise())


class _EvictionDetachNoise(logging.Filter):
    """Drops OpenTelemetry's "Failed to detach context" when a workflow evicted from the worker's cache
    is closed mid-await (GeneratorExit) inside a span: the context it would detach belongs to a
    coroutine that no longer runs, so there is nothing to undo (temporalio.contrib.opentelemetry's
    _context.py explains the same case)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        evicted = isinstance(error, ValueError) and isinstance(error.__context__, GeneratorExit)
        return not (evicted and record.getMessage().startswith("Failed to detach context"))


def disable() -> None:
    """Stop tracing new clients, apps and engines (those made while enabled keep their hooks)."""
    _State.enabled = False
    logs.trace_ids = None


def configure(settings: Settings, service_name: str) -> None:
    """Switch tracing on when OTEL_EXPORTER_OTLP_ENDPOINT is set; idempotent."""
    endpoint = settings.otel_exporter_otlp_endpoint
    if not endpoint or _State.enabled:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    enable(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"), service_name=service_name)


def tracer() -> trace.Tracer:
    provider = _State.provider
    return provider.get_tracer(TRACER_NAME) if provider is not None else trace.get_tracer(TRACER_NAME)


def _current_ids() -> tuple[str, str] | None:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def temporal_plugins() -> list[SimplePlugin]:
    """For `Client.connect(plugins=…)`: the worker built on that client gets the plugin as well."""
    if not _State.enabled:
        return []
    from observability.temporal_tracing import TracingPlugin

    return [TracingPlugin()]


# ---- SQL ------------------------------------------------------------------------------------


def instrument_engine(engine: AsyncEngine) -> AsyncEngine:
    """A CLIENT span per statement inside a traced operation (a request, an activity)."""
    if _State.enabled and not event.contains(engine.sync_engine, "before_cursor_execute", _before_execute):
        event.listen(engine.sync_engine, "before_cursor_execute", _before_execute)
        event.listen(engine.sync_engine, "after_cursor_execute", _after_execute)
        event.listen(engine.sync_engine, "handle_error", _on_error)
    return engine


def _before_execute(conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
    if not trace.get_current_span().get_span_context().is_valid:
        return  # background work (the flag cache's poll): a root trace per query is noise
    operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
    context._flagship_span = tracer().start_span(
        operation,
        kind=SpanKind.CLIENT,
        # Statements carry placeholders, never the bound values.
        attributes={"db.system": conn.dialect.name, "db.statement": statement[:4000]},
    )


def _after_execute(
    _conn: Any, _cursor: Any, _statement: str, _params: Any, context: Any, _many: bool
) -> None:
    span = getattr(context, "_flagship_span", None)
    if span is not None:
        span.end()


def _on_error(exception_context: Any) -> None:
    span = getattr(exception_context.execution_context, "_flagship_span", None)
    if span is not None:
        span.set_status(Status(StatusCode.ERROR, type(exception_context.original_exception).__name__))
        span.end()


# ---- HTTP -----------------------------------------------------------------------------------


class TracingMiddleware:
    """A SERVER span per HTTP request, continuing the caller's trace (W3C traceparent) if any.

    The outermost middleware when tracing is on, so the SDK fast path and every log line of the
    request (the access log included) run inside the span."""

    def __init__(self, app: ASGIApp, *, sdk_paths: Iterable[str] = ()) -> None:
        self.app = app
        self.sdk_paths = frozenset(p.rstrip("/") or "/" for p in sdk_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in _PROPAGATED}
        method = scope["method"]
        with tracer().start_as_current_span(
            method, context=propagate.extract(carrier), kind=SpanKind.SERVER, record_exception=True
        ) as span:
            status = 500
            request_id = ""

            async def send_status(message: Message) -> None:
                nonlocal status, request_id
                if message["type"] == "http.response.start":
                    status = message["status"]
                    # Set by the request observer inside this middleware (observability/http.py).
                    for name, value in message.get("headers", ()):
                        if name == b"x-request-id":
                            request_id = value.decode("latin-1")
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                route = route_label(scope, self.sdk_paths)
                span.update_name(f"{method} {route}")
                span.set_attributes(
                    {
                        "http.request.method": method,
                        "http.route": route,
                        "url.path": scope["path"],
                        "http.response.status_code": status,
                        "flagship.request_id": request_id,
                    }
                )
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
