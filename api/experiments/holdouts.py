"""Holdouts API (reference §6): rows are plain writes; experiments' flags follow through workflows."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.experiments.fanout import Plan, update_each
from api.experiments.fields import check_string
from api.temporal import TemporalConnection
from db.holdouts import detach_from_deleted_experiments, live_experiments_using
from db.tables import Experiment, ExperimentHoldout, FeatureFlag
from db.types import utcnow
from domain.errors import ValidationFailed
from domain.flag_rules import with_holdout_filters
from domain.holdout_rules import require_filters, validate_holdout_filters, with_holdout_variant


def _check_fields(body: dict[str, Any], *, name_required: bool) -> None:
    """ExperimentHoldoutSerializer's fields in declaration order, in DRF's words."""
    if name_required and "name" not in body:
        raise ValidationFailed("This field is required.", attr="name", code="required")
    if "name" in body:
        body["name"] = check_string("name", body["name"], max_length=400, allow_null=False, allow_blank=False)
    if "description" in body:
        body["description"] = check_string(
            "description", body["description"], max_length=400, allow_null=True, allow_blank=True
        )
    if "filters" in body:
        filters = body["filters"]
        if filters is None:
            raise ValidationFailed("This field may not be null.", attr="filters", code="null")
        if not isinstance(filters, list):
            raise ValidationFailed(
                f'Expected a list of items but got type "{type(filters).__name__}".',
                attr="filters",
                code="not_a_list",
            )
        validate_holdout_filters(filters)


async def create_holdout(
    session: AsyncSession, ctx: ProjectContext, body: dict[str, Any]
) -> ExperimentHoldout:
    _check_fields(body, name_required=True)
    require_filters(body.get("filters"))
    now = utcnow()
    holdout = ExperimentHoldout(
        team_id=ctx.project_id,
        name=body["name"].strip(),
        description=body.get("description"),
        filters=body["filters"],
        created_by_id=ctx.principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(holdout)
    await session.flush()
    assert holdout.id is not None
    holdout.filters = with_holdout_variant(holdout.id, holdout.filters)
    session.add(holdout)
    await session.commit()
    return holdout


def _flag_plan(holdout: dict[str, Any] | None, clear_holdout_id: bool) -> Plan:
    async def plan(experiment: Experiment, flag: FeatureFlag | None) -> dict[str, Any] | None:
        fields: dict[str, Any] = {"changes": {"holdout_id": None} if clear_holdout_id else {}}
        if flag is not None:
            fields["flag_changes"] = {"filters": with_holdout_filters(flag.filters, holdout)}
        return fields if flag is not None or clear_holdout_id else None

    return plan


async def update_holdout(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    holdout: ExperimentHoldout,
    body: dict[str, Any],
    *,
    partial: bool,
) -> None:
    """Save the row, then recompute `filters.holdout` on the flag of every experiment using it."""
    _check_fields(body, name_required=not partial)
    assert holdout.id is not None
    holdout_id = holdout.id
    new_filters = with_holdout_variant(holdout_id, body["filters"]) if body.get("filters") else None
    changed = new_filters is not None and new_filters != holdout.filters
    for attr in ("name", "description"):
        if attr in body:
            setattr(holdout, attr, body[attr].strip() if attr == "name" else body[attr])
    if "filters" in body:
        holdout.filters = new_filters if new_filters is not None else body["filters"]
    holdout.updated_at = utcnow()
    session.add(holdout)
    await session.commit()
    if changed:
        plan = _flag_plan({"id": holdout_id, "filters": new_filters}, clear_holdout_id=False)
        await update_each(
            session, temporal, ctx, await live_experiments_using(session, ctx.project_id, holdout_id), plan
        )


async def delete_holdout(
    session: AsyncSession, temporal: TemporalConnection, ctx: ProjectContext, holdout: ExperimentHoldout
) -> None:
    """Detach every experiment (`holdout_id` null, `filters.holdout` null) first, then delete the row:
    an interrupted delete is completed by repeating it."""
    assert holdout.id is not None
    holdout_id = holdout.id
    using = await live_experiments_using(session, ctx.project_id, holdout_id)
    await update_each(session, temporal, ctx, using, _flag_plan(None, clear_holdout_id=True))
    await detach_from_deleted_experiments(session, ctx.project_id, holdout_id)
    stored = await session.get(ExperimentHoldout, holdout_id)
    if stored is not None:
        await session.delete(stored)
    await session.commit()
