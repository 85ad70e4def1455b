"""Cohorts as PostHog's CohortSerializer renders them, and exposure-cohort members from the events.

There is no person store or background calculation: a read computes the members from the event
table, so `count` is current and `is_calculating` is false on every read.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.render import iso
from api.schemas.accounts import user_basic
from db import accounts
from db.cohorts import action_event_names, experiments_with_cohort, first_seen_distinct_ids
from db.tables import Cohort
from db.types import utcnow
from domain.exposure_cohort import event_matcher, exposure_criterion

# Persons have no ids here; a stable name-based uuid per (project, distinct id) stands in for one.
_PERSON_NAMESPACE = uuid.UUID("6f1c6d8e-5a8b-4d7e-9a57-0d7f3a1c2b90")


async def cohort_members(session: AsyncSession, cohort: Cohort) -> list[str] | None:
    """Distinct ids in the cohort, first exposed first; None when the filters are not an exposure."""
    criterion = exposure_criterion(cohort.filters)
    if criterion is None:
        return None
    if criterion.event_type == "actions":
        names = await action_event_names(session, cohort.team_id, int(criterion.key))
    else:
        names = [str(criterion.key)]
    return await first_seen_distinct_ids(
        session, cohort.team_id, names, criterion.since, event_matcher(criterion)
    )


async def cohort_out(session: AsyncSession, cohort: Cohort, *, calculate: bool = True) -> dict[str, Any]:
    """`calculate=False` renders the row as stored (the create response: calculation pending)."""
    assert cohort.id is not None
    creator = await accounts.user_by_id(session, cohort.created_by_id) if cohort.created_by_id else None
    members = await cohort_members(session, cohort) if calculate else None
    return {
        "id": cohort.id,
        "name": cohort.name,
        "description": cohort.description,
        "groups": cohort.groups,
        "deleted": cohort.deleted,
        "filters": cohort.filters,
        "query": None,
        "version": None,
        "pending_version": None,
        "is_calculating": cohort.is_calculating if not calculate else False,
        "created_by": user_basic(creator),
        "created_at": iso(cohort.created_at),
        "last_calculation": iso(utcnow()) if members is not None else None,
        "errors_calculating": 0,
        "last_error_at": None,
        "count": len(members) if members is not None else None,
        "is_static": cohort.is_static,
        "experiment_set": await experiments_with_cohort(session, cohort.team_id, cohort.id),
    }


def person_out(team_id: int, distinct_id: str) -> dict[str, Any]:
    person_id = str(uuid.uuid5(_PERSON_NAMESPACE, f"{team_id}:{distinct_id}"))
    return {
        "type": "person",
        "id": person_id,
        "uuid": person_id,
        "name": distinct_id,
        "distinct_ids": [distinct_id],
        "properties": {},
        "is_identified": False,
    }
