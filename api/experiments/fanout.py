"""One change applied to several experiments, each through its own workflow (design.md §1).

Holdout and saved-metric edits reach every experiment that uses them; each experiment still has a
single writer, so the change is one workflow `update` per experiment, one after the other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import ApiError
from api.experiments import commands
from api.temporal import TemporalConnection
from db.tables import Experiment, FeatureFlag
from domain.experiment_messages import UpdateRequest
from domain.lifecycle import Status, stored_status

# (experiment, its flag) -> UpdateRequest fields (`changes`, `flag_changes`, `saved_metric_links`),
# or None when that experiment needs nothing.
Plan = Callable[[Experiment, FeatureFlag | None], Awaitable[dict[str, Any] | None]]


async def update_each(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    experiment_ids: Iterable[int],
    plan: Plan,
) -> None:
    """Send the planned update to each experiment; a failure stops here and is the response.

    Each experiment is re-read just before its update (the previous one may have changed a shared
    flag), and the status it was validated against travels with the request.
    """
    for experiment_id in experiment_ids:
        try:
            experiment, flag = await commands.find_experiment(session, ctx, experiment_id)
        except ApiError:
            continue  # soft-deleted since it was listed: its workflow takes no more writes
        fields = await plan(experiment, flag)
        if fields is None:
            continue
        req = UpdateRequest(
            actor_id=ctx.principal.user_id,
            assumed_status=Status(stored_status(experiment.start_date, experiment.end_date).value),
            **({"changes": {}} | fields),
        )
        await commands.send(
            session, temporal, ctx, experiment, flag, update="update", arg=req, idempotency_key=None
        )
