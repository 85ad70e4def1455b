"""Event capture for the PostHog SDKs: `/batch/`, `/e/`, `/capture/`, `/track/`, `/i/v0/e/`,
`/i/v0/ai/batch/` and the opt-in `/i/v1/analytics/events` (posthog-clients.md §1).

A batch is validated whole before anything is written (one malformed event refuses all of it), then
appended through the coalescing `EventWriter`; the 200 leaves only after the commit holding the rows.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.capture_parse import (
    PayloadError,
    as_str,
    batch_clock,
    capture_token,
    decode_body,
    group_types_seen,
    parse_events,
    raw_events,
)
from api.flag_cache import FlagCache, ProjectFlags
from api.routes.flags_eval import error_response, json_response, lean_router
from db.events import EventRow, EventWriter, ensure_group_types
from db.tables.groups import MAX_GROUP_TYPES
from db.types import utcnow

NO_API_KEY = "API key not provided. You can find your project API key in PostHog project settings."
BAD_API_KEY = "Project API key invalid. You can find your project API key in PostHog project settings."


class CaptureRefused(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _bad_payload(error: PayloadError) -> CaptureRefused:
    type_ = "validation_error" if error.code == "invalid_payload" else "invalid_request"
    status = 413 if error.code == "payload_too_large" else 400
    return CaptureRefused(error_response(status, type_, error.code, error.detail, error.attr))


async def _decode(request: Request) -> Any:
    headers = request.headers
    try:
        return decode_body(
            await request.body(),
            content_encoding=headers.get("content-encoding"),
            content_type=headers.get("content-type"),
            compression=request.query_params.get("compression"),
        )
    except PayloadError as error:
        raise _bad_payload(error) from None


def _project(request: Request, token: str | None) -> ProjectFlags:
    if token is None:
        raise CaptureRefused(error_response(401, "authentication_error", "missing_api_key", NO_API_KEY))
    cache: FlagCache = request.app.state.flag_cache
    project = cache.project(token)
    if project is None:
        if not cache.loaded:
            detail = "Project keys are loading. Try again shortly."
            raise CaptureRefused(error_response(503, "server_error", "service_unavailable", detail))
        raise CaptureRefused(error_response(401, "authentication_error", "invalid_api_key", BAD_API_KEY))
    return project


async def _register_group_types(request: Request, project: ProjectFlags, rows: list[EventRow]) -> None:
    """Group types get their index on first sight; flags aggregate by that index."""
    if len(project.group_types) >= MAX_GROUP_TYPES:
        return
    unseen = [name for name in group_types_seen(rows) if name not in project.group_types]
    if not unseen:
        return
    async with request.app.state.engine.begin() as conn:
        mapping = await ensure_group_types(conn, project.project_id, unseen)
    cache: FlagCache = request.app.state.flag_cache
    cache.remember_group_types(project.project_id, mapping)


async def _ingest(request: Request, token: str | None, payload: Any, events: list[Any]) -> list[EventRow]:
    project = _project(request, token)
    try:
        rows = parse_events(events, project.project_id, batch_clock(payload, utcnow()))
    except PayloadError as error:
        raise _bad_payload(error) from None
    await _register_group_types(request, project, rows)
    writer: EventWriter = request.app.state.event_writer
    try:
        await writer.write(rows)
    except Exception:
        detail = "The events could not be stored. Try again shortly."
        raise CaptureRefused(error_response(503, "server_error", "service_unavailable", detail)) from None
    return rows


async def capture(request: Request) -> Response:
    try:
        payload = await _decode(request)
        try:
            events = raw_events(payload)
        except PayloadError as error:
            raise _bad_payload(error) from None
        await _ingest(request, capture_token(payload, events, request.query_params), payload, events)
    except CaptureRefused as refused:
        return refused.response
    return json_response({"status": 1})


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return as_str(value.strip()) if scheme.lower() == "bearer" else None


async def capture_v1(request: Request) -> Response:
    """The opt-in v1 capture: Bearer token, and a per-event result map the SDK requires."""
    try:
        payload = await _decode(request)
        try:
            events = raw_events(payload)
        except PayloadError as error:
            raise _bad_payload(error) from None
        token = _bearer(request) or capture_token(payload, events, request.query_params)
        rows = await _ingest(request, token, payload, events)
    except CaptureRefused as refused:
        return refused.response
    # Keyed by the uuid exactly as sent: the SDK looks its own strings up.
    sent = [event.get("uuid") if isinstance(event, dict) else None for event in events]
    results = {
        (s if isinstance(s, str) else row.uuid): {"result": "ok"} for s, row in zip(sent, rows, strict=True)
    }
    return json_response({"results": results})


_CAPTURE_PATHS = ("/batch/", "/e/", "/capture/", "/track/", "/i/v0/e/", "/i/v0/ai/batch/")
router = lean_router(
    *((path, capture, ["POST"]) for path in _CAPTURE_PATHS),
    ("/i/v1/analytics/events/", capture_v1, ["POST"]),
)
