"""Flag -> experiment back-sync (reference §4.4): a flags-API edit of variants rewrites every
linked experiment's `parameters`, through each experiment's workflow like any other change."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import ApiError, RawError
from api.experiments import commands
from api.temporal import TemporalConnection
from db import flags as flag_queries
from domain.experiment_messages import UpdateRequest
from domain.flag_rules import parameters_from_flag_filters
from domain.lifecycle import Status, stored_status

log = logging.getLogger("flagship.api")


async def sync_linked_experiments(
    session: AsyncSession, temporal: TemporalConnection, ctx: ProjectContext, flag_id: int
) -> list[int]:
    """Returns the experiments that could not be synced (Temporal down); the flag change stands."""
    failed: list[int] = []
    for experiment_id in await flag_queries.experiment_ids_for_flag(session, flag_id):
        experiment, flag = await commands.find_experiment(session, ctx, experiment_id)
        if flag is None:
            continue
        parameters = parameters_from_flag_filters(experiment.parameters, flag.filters)
        if parameters == (experiment.parameters or {}):
            continue
        req = UpdateRequest(
            actor_id=ctx.principal.user_id,
            changes={"parameters": parameters},
            assumed_status=Status(stored_status(experiment.start_date, experiment.end_date).value),
        )
        try:
            await commands.send(
                session, temporal, ctx, experiment, flag, update="update", arg=req, idempotency_key=None
            )
        except (ApiError, RawError) as err:
            log.warning("flag %s: experiment %s not synced: %s", flag_id, experiment_id, err)
            failed.append(experiment_id)
    return failed
