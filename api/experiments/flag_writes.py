"""Writing a feature flag through the flags API: the approval gate, then the change.

A PATCH that an enabled approval policy covers (reference §5: `feature_flag.enable`/`.disable` for
`active` flips, `feature_flag.update` for rollout changes) is held back as a change request and
answered 409, linked to an experiment or not; once the quorum approves, the approve endpoint
applies exactly the held-back change (`apply_approved_flag_change`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import RawError, not_found
from api.experiments.flag_sync import sync_linked_experiments
from api.temporal import TemporalConnection
from db import approvals as approval_queries
from db import flags as flag_queries
from db.tables import ChangeRequest, FeatureFlag
from db.types import utcnow
from domain import approvals as rules
from domain.errors import ValidationFailed

DUPLICATE_KEY = "There is already a feature flag with this key."
FLAG_UPDATE = "flag_update"  # the intent `operation` of a held-back flags-API write


async def gate_flag_write(
    session: AsyncSession, ctx: ProjectContext, flag: FeatureFlag, changes: dict[str, Any]
) -> None:
    """Raise the 409 (with its change request committed) when a policy covers this write."""
    body = await approval_queries.gate(
        session,
        flag=flag,
        action_keys=rules.flag_change_action_keys(flag.active, flag.filters, changes),
        intent={"operation": FLAG_UPDATE, "flag_id": flag.id, "changes": changes},
        description=f"update of feature flag {flag.key!r}",
        actor_id=ctx.principal.user_id,
        origin_op_id=None,
        now=utcnow(),
    )
    if body is not None:
        await session.commit()  # the change request outlives the refused write
        raise RawError(409, body)


async def write_flag(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    flag: FeatureFlag,
    changes: dict[str, Any],
) -> FeatureFlag:
    """Apply validated changes; linked experiments follow a change of variants."""
    flag_id = flag.id
    assert flag_id is not None
    for name, value in changes.items():
        setattr(flag, name, value)
    flag.version += 1
    flag.updated_at = utcnow()
    session.add(flag)
    try:
        await session.commit()
    except IntegrityError:  # two concurrent writes of one key: the unique index decides, as a 400
        await session.rollback()
        raise ValidationFailed(DUPLICATE_KEY, attr="key", code="unique") from None
    if "filters" in changes:
        await sync_linked_experiments(session, temporal, ctx, flag_id)
        session.expire_all()
        refreshed = await flag_queries.flag_by_id(session, ctx.project_id, flag_id)
        if refreshed is None:
            raise not_found()
        return refreshed
    return flag


async def apply_approved_flag_change(
    session: AsyncSession, temporal: TemporalConnection, ctx: ProjectContext, cr: ChangeRequest
) -> None:
    """Apply a held-back flags-API write whose quorum is in (no workflow owns a bare flag)."""
    now = utcnow()
    if cr.expires_at <= now:
        cr.state, cr.updated_at = "expired", now
        session.add(cr)
        await session.commit()
        raise ValidationFailed("Change request has expired.")
    flag = await flag_queries.flag_by_id(session, ctx.project_id, int(cr.intent["flag_id"]))
    if flag is None or flag.deleted:
        cr.state, cr.updated_at, cr.apply_error = "failed", now, "The feature flag no longer exists."
        session.add(cr)
        await session.commit()
        return
    cr.state, cr.applied_at, cr.updated_at, cr.applied_by_id = "applied", now, now, ctx.principal.user_id
    cr.result_data = {"flag_id": flag.id, "version": flag.version + 1}
    session.add(cr)
    await write_flag(session, temporal, ctx, flag, dict(cr.intent.get("changes") or {}))
