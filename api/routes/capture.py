"""Event capture for the PostHog SDKs: `/batch/`, `/e/`, `/capture/`, `/track/`, `/i/v0/e/`,
`/i/v0/ai/batch/` and the opt-in `/i/v1/analytics/events` (posthog-clients.md §1).

Served by the ASGI fast path (api/sdk_asgi.py). A batch is validated whole before anything is written
(one malformed event refuses all of it), then appended through the coalescing `EventWriter`; the 200
leaves only after the commit holding the rows.
"""

from __future__ import annotations

from typing import Any

from api.capture_parse import batch_clock, capture_token, group_types_seen, parse_events, raw_events
from api.flag_cache import FlagCache, ProjectFlags
from api.sdk_asgi import Routes, SdkRequest, SdkResponse, bearer_token, error_response, json_response
from api.sdk_payload import PayloadError, decode_body
from db.events import EventRow, EventWriter, WriterFull, ensure_group_types
from db.tables.groups import MAX_GROUP_TYPES
from db.types import utcnow
from observability.metrics import EVENTS_INGESTED

NO_API_KEY = "API key not provided. You can find your project API key in PostHog project settings."
BAD_API_KEY = "Project API key invalid. You can find your project API key in PostHog project settings."
_OK = b'{"status":1}'


class CaptureRefused(Exception):
    def __init__(self, response: SdkResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _bad_payload(error: PayloadError) -> CaptureRefused:
    return CaptureRefused(
        error_response(error.status, error.error_type, error.code, error.detail, error.attr)
    )


def _envelope(request: SdkRequest) -> tuple[Any, list[Any]]:
    try:
        payload = decode_body(
            request.body,
            content_encoding=request.headers.get("content-encoding"),
            content_type=request.headers.get("content-type"),
            compression=request.query.get("compression"),
            storable=True,
        )
        return payload, raw_events(payload)
    except PayloadError as error:
        raise _bad_payload(error) from None


async def _project(request: SdkRequest, token: str | None) -> ProjectFlags:
    if token is None:
        raise CaptureRefused(error_response(401, "authentication_error", "missing_api_key", NO_API_KEY))
    cache: FlagCache = request.state.flag_cache
    project = cache.project(token)
    if project is not None:
        return project
    try:
        # A project created a moment ago is not in the cache yet: a 401 would lose its first events.
        project = await cache.resolve(token)
    except Exception:
        detail = "Project keys could not be loaded. Try again shortly."
        raise CaptureRefused(error_response(503, "server_error", "service_unavailable", detail)) from None
    if project is None:
        raise CaptureRefused(error_response(401, "authentication_error", "invalid_api_key", BAD_API_KEY))
    return project


async def _register_group_types(request: SdkRequest, project: ProjectFlags, rows: list[EventRow]) -> None:
    """Group types get their index on first sight; flags aggregate by that index."""
    if len(project.group_types) >= MAX_GROUP_TYPES:
        return
    unseen = [name for name in group_types_seen(rows) if name not in project.group_types]
    if not unseen:
        return
    async with request.state.engine.begin() as conn:
        mapping = await ensure_group_types(conn, project.project_id, unseen)
    cache: FlagCache = request.state.flag_cache
    cache.remember_group_types(project.project_id, mapping)


async def _ingest(request: SdkRequest, token: str | None, payload: Any, events: list[Any]) -> list[EventRow]:
    project = await _project(request, token)
    try:
        rows = parse_events(events, project.project_id, batch_clock(payload, utcnow()))
    except PayloadError as error:
        raise _bad_payload(error) from None
    await _register_group_types(request, project, rows)
    writer: EventWriter = request.state.event_writer
    try:
        await writer.write(rows)
    except WriterFull:
        detail = "Too many events are waiting to be stored. Retry shortly."
        busy = error_response(503, "server_error", "service_unavailable", detail)
        busy.headers.append((b"retry-after", b"1"))
        raise CaptureRefused(busy) from None
    except Exception:
        detail = "The events could not be stored. Try again shortly."
        raise CaptureRefused(error_response(503, "server_error", "service_unavailable", detail)) from None
    EVENTS_INGESTED.inc(len(rows))
    return rows


async def capture(request: SdkRequest) -> SdkResponse:
    try:
        payload, events = _envelope(request)
        await _ingest(request, capture_token(payload, events, request.query), payload, events)
    except CaptureRefused as refused:
        return refused.response
    return SdkResponse(200, _OK)


async def capture_v1(request: SdkRequest) -> SdkResponse:
    """The opt-in v1 capture: Bearer token, and a per-event result map the SDK requires."""
    try:
        payload, events = _envelope(request)
        token = bearer_token(request) or capture_token(payload, events, request.query)
        rows = await _ingest(request, token, payload, events)
    except CaptureRefused as refused:
        return refused.response
    # Keyed by the uuid exactly as sent: the SDK looks its own strings up.
    sent = [event.get("uuid") if isinstance(event, dict) else None for event in events]
    results = {
        (s if isinstance(s, str) else row.uuid): {"result": "ok"} for s, row in zip(sent, rows, strict=True)
    }
    return json_response({"results": results})


_POST = frozenset({"POST"})
ROUTES: Routes = {
    **{
        path: (_POST, capture) for path in ("/batch", "/e", "/capture", "/track", "/i/v0/e", "/i/v0/ai/batch")
    },
    "/i/v1/analytics/events": (_POST, capture_v1),
}
