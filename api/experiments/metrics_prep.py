"""Metric preparation shared by create and PATCH: uuids, schema, actions, event names, fingerprints."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db.event_definitions import existing_action_ids, known_event_names
from domain.metrics import (
    assign_metric_uuids,
    check_action_ids,
    check_event_names,
    collect_action_ids,
    collect_event_names,
    validate_metrics,
)


def new_uuid() -> str:
    return str(uuid.uuid4())


async def prepare_metrics(
    session: AsyncSession,
    team_id: int,
    primary: list[Any] | None,
    secondary: list[Any] | None,
    *,
    reserved_uuids: Iterable[str],
    allow_unknown_events: bool,
) -> tuple[list[Any] | None, list[Any] | None]:
    """Validate the sent metric lists and give every metric a unique uuid (order as upstream)."""
    primary, secondary = assign_metric_uuids(primary, secondary, reserved_uuids, new_uuid)
    if primary is not None:
        validate_metrics(primary, "metrics")
    if secondary is not None:
        validate_metrics(secondary, "metrics_secondary")
    both = [*(primary or []), *(secondary or [])]
    action_ids = collect_action_ids(both)
    if action_ids:
        check_action_ids(both, await existing_action_ids(session, team_id, action_ids))
    if not allow_unknown_events:
        names = collect_event_names(both)
        check_event_names(both, await known_event_names(session, team_id, names))
    return primary, secondary
