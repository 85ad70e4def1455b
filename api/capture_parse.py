"""Capture envelopes (/batch, /e, /capture, /i/v0/e …): the events inside, validated into rows.

The body itself is decoded by api/sdk_payload.py, shared with /flags and /decide.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from api.sdk_payload import PayloadError, body_token, query_token
from db.events import EventRow

# Column widths of the event table (db/tables/events.py); PostHog truncates distinct ids to 200 too.
MAX_DISTINCT_ID = 200
MAX_EVENT_NAME = 400
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# ---------------------------------------------------------------------------------------------- capture


def raw_events(payload: Any) -> list[Any]:
    """The events of a capture envelope: `{batch: [...]}`, a bare list (posthog-js), or one event."""
    if isinstance(payload, list):
        events = payload
    elif isinstance(payload, Mapping) and "batch" in payload:
        events = payload["batch"]
        if not isinstance(events, list):
            raise PayloadError("Invalid payload: batch must be a list of events.", attr="batch")
    elif isinstance(payload, Mapping) and "data" in payload and isinstance(payload["data"], list | dict):
        return raw_events(payload["data"])
    elif isinstance(payload, Mapping):
        events = [payload]
    else:
        raise PayloadError("Invalid payload: expected a JSON object or a list of events.")
    if not events:
        raise PayloadError("Invalid payload: request holds no event.", attr="batch")
    return events


def capture_token(payload: Any, events: list[Any], query: Mapping[str, str]) -> str | None:
    """Envelope first, then the query string, then the events themselves (posthog-js puts it there)."""
    token = body_token(payload) or query_token(query)
    if token:
        return token
    for event in events:
        if isinstance(event, Mapping):
            props = event.get("properties")
            found = body_token(event) or (body_token(props) if isinstance(props, Mapping) else None)
            if found:
                return found
    return None


def parse_iso(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BatchClock:
    """What the batch says about the client's clock, to correct skewed event timestamps (as PostHog)."""

    now: datetime
    sent_at: datetime | None
    historical: bool


def batch_clock(payload: Any, now: datetime) -> BatchClock:
    sent_at = None
    historical = False
    if isinstance(payload, Mapping):
        # `created_at` is the v1 capture envelope's name for it.
        raw = payload.get("sent_at") or payload.get("sentAt") or payload.get("created_at")
        sent_at = parse_iso(raw) if isinstance(raw, str) else None
        historical = payload.get("historical_migration") is True
    return BatchClock(now, sent_at, historical)


def _invalid(index: int, field: str, detail: str) -> PayloadError:
    return PayloadError(f"Invalid payload: {detail}", attr=f"batch__{index}__{field}")


def _distinct_id(event: dict[str, Any], props: dict[str, Any], index: int) -> str:
    raw = event.get("distinct_id")
    if raw is None:
        raw = event.get("$distinct_id")
        if raw is None:
            raw = props.get("distinct_id")
    kind = type(raw)
    if kind is not str:
        if raw is None:
            raise _invalid(index, "distinct_id", 'All events must have the event field "distinct_id"!')
        if kind is not int and kind is not float:  # bool is not a number here (type(True) is bool)
            raise _invalid(index, "distinct_id", 'Event field "distinct_id" must be a string or a number.')
        raw = str(raw)
    if not raw:
        raise _invalid(index, "distinct_id", 'Event field "distinct_id" should not be blank!')
    # NUL cannot be stored in PostgreSQL text; PostHog's capture replaces it the same way.
    text: str = raw.replace("\0", "\ufffd") if "\0" in raw else raw
    return text if len(text) <= MAX_DISTINCT_ID else text[:MAX_DISTINCT_ID]


def _event_name(event: dict[str, Any], index: int) -> str:
    name = event.get("event")
    if type(name) is not str or not name:
        if name is None or name == "":
            raise _invalid(index, "event", "All events must have the event name field 'event'!")
        raise _invalid(index, "event", 'Event field "event" must be a string.')
    if "\0" in name:
        name = name.replace("\0", "\ufffd")
    return name if len(name) <= MAX_EVENT_NAME else name[:MAX_EVENT_NAME]


def _event_uuid(event: dict[str, Any], index: int) -> str:
    raw = event.get("uuid")
    if raw is None:
        return str(uuid.uuid4())
    if type(raw) is str and _CANONICAL_UUID.fullmatch(raw):
        return raw  # already in the form uuid.UUID would render, without the cost of parsing it
    try:
        if type(raw) is not str:
            raise ValueError
        return str(uuid.UUID(raw))
    except ValueError:
        raise _invalid(index, "uuid", 'Event field "uuid" must be a valid UUID.') from None


def _timestamp(event: dict[str, Any], props: dict[str, Any], clock: BatchClock, index: int) -> datetime:
    """PostHog's rule: `offset` (ms ago) wins; else the timestamp shifted by the client's clock skew."""
    offset = event.get("offset")
    if type(offset) is int and 0 <= offset < 10**12:
        return clock.now - timedelta(milliseconds=offset)
    raw = event.get("timestamp")
    if raw is None:
        return clock.now
    parsed = parse_iso(raw) if type(raw) is str else None
    if parsed is None:
        raise _invalid(index, "timestamp", 'Event field "timestamp" must be an ISO-8601 datetime.')
    if clock.sent_at is None or clock.historical or props.get("$ignore_sent_at") is True:
        return parsed
    try:
        return clock.now + (parsed - clock.sent_at)
    except OverflowError:
        return parsed


def _with_person_updates(event: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
    # Top-level person updates belong in the properties, where PostHog moves them.
    for key in ("$set", "$set_once"):
        if type(event.get(key)) is dict and key not in props:
            props = {**props, key: event[key]}
    return props


def parse_event(event: Any, index: int, team_id: int, clock: BatchClock) -> EventRow:
    if type(event) is not dict:
        raise PayloadError("Invalid payload: every event must be a JSON object.", attr=f"batch__{index}")
    props = event.get("properties")
    if props is None:
        props = {}
    elif type(props) is not dict:
        raise _invalid(
            index, "properties", f"Properties must be a JSON object, received {type(props).__name__}!"
        )
    name = _event_name(event, index)
    distinct_id = _distinct_id(event, props, index)
    if "$set" in event or "$set_once" in event:
        props = _with_person_updates(event, props)
    return EventRow(
        _event_uuid(event, index), team_id, name, distinct_id, _timestamp(event, props, clock, index), props
    )


def parse_events(events: list[Any], team_id: int, clock: BatchClock) -> list[EventRow]:
    """All or nothing: one malformed event refuses the whole batch."""
    return [parse_event(event, index, team_id, clock) for index, event in enumerate(events)]


def group_types_seen(events: list[EventRow]) -> list[str]:
    """Group type names in order of first sight (`$groups` keys, `$groupidentify`'s `$group_type`)."""
    seen: dict[str, None] = {}
    for event in events:
        groups = event.properties.get("$groups")
        if isinstance(groups, dict):
            for name in groups:
                seen.setdefault(name, None)
        if event.event == "$groupidentify":
            group_type = event.properties.get("$group_type")
            if isinstance(group_type, str) and group_type:
                seen.setdefault(group_type, None)
    return [name for name in seen if name and len(name) <= MAX_EVENT_NAME]
