"""Apply one lifecycle operation to a loaded row and its flag (inside the caller's transaction).

`domain.lifecycle.plan` checks the preconditions against the database (the truth when the flag
was changed outside the workflow; the workflow validator checked its own state) and returns the
operation's effect, which is copied onto the rows here.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from activities.rows import Written, audit, bump, change_flag, parse_columns, update_operation
from db import operations
from db.experiments import facts_of, fingerprint_settings, snapshot_fields
from db.saved_metrics import replace_links
from db.tables import Experiment, FeatureFlag
from domain.errors import Conflict
from domain.experiment_messages import ExperimentSnapshot, TransitionRequest, UpdateRequest
from domain.fingerprint import with_fingerprints
from domain.lifecycle import Effect, Operation, plan, rewritten_filters, stored_status


def apply_operation(
    operation: Operation,
    experiment: Experiment,
    flag: FeatureFlag | None,
    request: TransitionRequest,
    now: datetime,
) -> None:
    """Check the operation against the row (the one check in the transaction) and copy its effect."""
    copy_effect(plan_operation(operation, experiment, flag, request, now), experiment, flag, now)


def plan_operation(
    operation: Operation,
    experiment: Experiment,
    flag: FeatureFlag | None,
    request: TransitionRequest,
    now: datetime,
) -> Effect:
    return plan(operation, facts_of(experiment, flag), request.intent(), now)


def copy_effect(effect: Effect, experiment: Experiment, flag: FeatureFlag | None, now: datetime) -> None:
    experiment.start_date = effect.start_date
    experiment.end_date = effect.end_date
    experiment.archived = effect.archived
    if effect.conclusion is not None:
        experiment.conclusion, experiment.conclusion_comment = effect.conclusion
    if effect.scheduling_config is not experiment.scheduling_config:
        experiment.scheduling_config = dict(effect.scheduling_config) if effect.scheduling_config else None
    if effect.refresh_fingerprints:
        refresh_fingerprints(experiment)
    if flag is None:
        return
    filters = rewritten_filters(effect, flag.filters)
    active_changes = effect.flag_active is not None and flag.active != effect.flag_active
    if filters is not None or active_changes:
        flag.active = flag.active if effect.flag_active is None else effect.flag_active
        flag.filters = flag.filters if filters is None else filters
        flag.version += 1
        flag.updated_at = now


def refresh_fingerprints(experiment: Experiment) -> None:
    """Fingerprints depend on start_date and the stats method, so launch recomputes them."""
    common = fingerprint_settings(experiment)
    experiment.metrics = with_fingerprints(experiment.metrics, **common)
    experiment.metrics_secondary = with_fingerprints(experiment.metrics_secondary, **common)


def check_expected_version(experiment: Experiment, request: TransitionRequest) -> None:
    """An autopilot decision applies only to the state it was judged on: a manual end, pause or
    reset (or any other change) in between wins, and the decision is dropped."""
    expected = request.expected_version
    if expected is not None and experiment.version != expected:
        raise Conflict(
            f"The experiment changed after the autopilot judged it (version {expected}, now "
            f"{experiment.version}); the decision was not applied."
        )


def check_assumed_status(experiment: Experiment, req: UpdateRequest) -> None:
    """A PATCH was validated against one status; applied to another it could mean something else."""
    current = stored_status(experiment.start_date, experiment.end_date).value
    assumed = "running" if req.assumed_status.value == "paused" else req.assumed_status.value
    if current != assumed:
        raise Conflict("The experiment changed while this request was processed. Retry the request.")


async def write_update(
    session: AsyncSession,
    experiment: Experiment,
    flag: FeatureFlag | None,
    req: UpdateRequest,
    now: datetime,
    op_id: str,
) -> Written:
    """Apply a validated PATCH to the loaded rows (directly, or once its change request is approved)."""
    before = stored_status(experiment.start_date, experiment.end_date).value
    for name, value in parse_columns(req.changes).items():
        setattr(experiment, name, value)
    if req.flag_changes and flag is not None:
        change_flag(session, flag, req.flag_changes, now)
    if req.saved_metric_links is not None:
        # PATCH `saved_metrics_ids`: None leaves the links alone, a list (even []) replaces them.
        assert experiment.id is not None
        await replace_links(session, experiment.id, req.saved_metric_links, now)
    bump(session, experiment, now)
    via = "approval" if req.approved_change_request_id else "rest"
    audit(session, experiment, update_operation(req.changes), req.actor_id, op_id, before, via=via)
    snapshot = ExperimentSnapshot.model_validate(snapshot_fields(experiment, flag))
    return snapshot, operations.row_image(experiment, flag)
