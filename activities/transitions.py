"""Apply one lifecycle operation to a loaded row and its flag (inside the caller's transaction).

The preconditions are re-checked here against the database, which is the truth when the flag
was changed outside the workflow; the workflow validator already checked its cached state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from activities.rows import Written, audit, bump, change_flag, parse_columns, update_operation
from db import operations
from db.experiments import facts_of, fingerprint_settings, snapshot_fields
from db.saved_metrics import replace_links
from db.tables import Experiment, FeatureFlag
from domain.errors import Conflict
from domain.experiment_messages import ExperimentSnapshot, TransitionRequest, UpdateRequest
from domain.fingerprint import with_fingerprints
from domain.flag_rules import ensure_variant_on_flag, ship_variant_filters
from domain.lifecycle import Operation, apply_transition, check_transition, flag_active_after, stored_status
from domain.scheduling import cancel_pending, has_schedule, with_status


def check_operation(
    operation: Operation, experiment: Experiment, flag: FeatureFlag | None, request: TransitionRequest
) -> None:
    """PostHog's preconditions against the database (the workflow checked its cache already)."""
    check_transition(operation, facts_of(experiment, flag))
    if operation == "ship_variant" and flag is not None:
        ensure_variant_on_flag(flag.filters, request.variant_key or "")


def apply_operation(
    operation: Operation,
    experiment: Experiment,
    flag: FeatureFlag | None,
    request: TransitionRequest,
    now: datetime,
) -> None:
    check_operation(operation, experiment, flag, request)
    facts = facts_of(experiment, flag)
    target = apply_transition(operation, facts, now)
    experiment.start_date = target.start_date
    experiment.end_date = target.end_date
    experiment.archived = target.archived
    _apply_conclusion(operation, experiment, request)
    _record_schedule(operation, experiment, request, now)
    active = flag_active_after(operation)
    if flag is not None and active is not None and flag.active != active:
        flag.active = active
        flag.version += 1
        flag.updated_at = now
    if operation == "launch":
        refresh_fingerprints(experiment)
    if operation == "ship_variant" and flag is not None:
        flag.filters = ship_variant_filters(
            flag.filters, request.variant_key or "", request.release_to_everyone
        )
        flag.version += 1
        flag.updated_at = now


def _record_schedule(
    operation: Operation, experiment: Experiment, request: TransitionRequest, now: datetime
) -> None:
    """The timer marks what it did in the same transaction; a manual end or reset cancels it."""
    config = experiment.scheduling_config
    if not has_schedule(config):
        return
    if request.via == "timer":
        action: Literal["launch", "end"] = "launch" if operation == "launch" else "end"
        experiment.scheduling_config = with_status(config, action, "done", now)
    elif operation in ("end", "reset") or (operation == "ship_variant" and experiment.end_date == now):
        experiment.scheduling_config = cancel_pending(
            config,
            start_date=experiment.start_date,
            end_date=experiment.end_date,
            at=now,
            why=f"manual {operation}",
        )


def _apply_conclusion(operation: Operation, experiment: Experiment, request: TransitionRequest) -> None:
    if operation == "end":
        # PostHog's end overwrites both with the sent values, null when omitted (gotcha 6).
        experiment.conclusion = request.conclusion
        experiment.conclusion_comment = request.conclusion_comment
    elif operation == "reset":
        experiment.conclusion = None
        experiment.conclusion_comment = None
    elif operation == "ship_variant" and request.conclusion_provided:
        experiment.conclusion = request.conclusion
        experiment.conclusion_comment = request.conclusion_comment


def refresh_fingerprints(experiment: Experiment) -> None:
    """Fingerprints depend on start_date and the stats method, so launch recomputes them."""
    common = fingerprint_settings(experiment)
    experiment.metrics = with_fingerprints(experiment.metrics, **common)
    experiment.metrics_secondary = with_fingerprints(experiment.metrics_secondary, **common)


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
