"""`create_exposure_cohort_for_experiment/` (reference §4.9): the cohort row is a plain write; linking
it to the experiment (`exposure_cohort_id`) is an update through the experiment's workflow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import ApiError, RawError
from api.experiments import commands
from api.experiments.cohorts import cohort_out
from api.temporal import TemporalConnection
from db.tables import Cohort, Experiment, FeatureFlag
from domain.experiment_messages import UpdateRequest
from domain.exposure_cohort import check_can_create, cohort_filters, cohort_name, exposure_target
from domain.lifecycle import Status, stored_status


def _new_cohort(ctx: ProjectContext, experiment: Experiment, flag: FeatureFlag) -> Cohort:
    """Dynamic and calculating, as upstream's CohortSerializer creates it."""
    assert experiment.start_date is not None
    custom = (experiment.parameters or {}).get("custom_exposure_filter")
    target, event_type, event_filters = exposure_target(
        flag.key, custom if isinstance(custom, Mapping) else None
    )
    return Cohort(
        team_id=ctx.project_id,
        name=cohort_name(experiment.name),
        filters=cohort_filters(target, event_type, event_filters, experiment.start_date),
        is_static=False,
        is_calculating=True,
        created_by_id=ctx.principal.user_id,
    )


async def create_exposure_cohort(
    session: AsyncSession,
    temporal: TemporalConnection,
    ctx: ProjectContext,
    experiment_id: int,
    idempotency_key: str | None,
) -> dict[str, Any]:
    experiment, flag = await commands.find_experiment(session, ctx, experiment_id)
    check_can_create(flag is not None, experiment.start_date, experiment.exposure_cohort_id)
    assert flag is not None
    cohort = _new_cohort(ctx, experiment, flag)
    session.add(cohort)
    await session.flush()
    cohort_id = cohort.id  # plain value: the session expires its objects once the workflow wrote
    assert cohort_id is not None
    req = UpdateRequest(
        actor_id=ctx.principal.user_id,
        changes={"exposure_cohort_id": cohort_id},
        assumed_status=Status(stored_status(experiment.start_date, experiment.end_date).value),
    )
    try:
        await commands.send(
            session,
            temporal,
            ctx,
            experiment,
            flag,
            update="update",
            arg=req,
            idempotency_key=idempotency_key,
        )
    except (ApiError, RawError):
        # Not linked: hide the orphan so a retry does not leave two cohorts behind.
        orphan = await session.get(Cohort, cohort_id)
        if orphan is not None:
            orphan.deleted = True
            session.add(orphan)
            await session.commit()
        raise
    fresh = await session.get(Cohort, cohort_id)
    assert fresh is not None
    return {"cohort": await cohort_out(session, fresh, calculate=False)}
