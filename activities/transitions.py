"""Apply one lifecycle operation to a loaded row and its flag (inside the caller's transaction).

The preconditions are re-checked here against the database, which is the truth when the flag
was changed outside the workflow; the workflow validator already checked its cached state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from db.experiments import facts_of, fingerprint_settings
from db.tables import Experiment, FeatureFlag
from domain.experiment_messages import TransitionRequest
from domain.fingerprint import with_fingerprints
from domain.flag_rules import ensure_variant_on_flag, ship_variant_filters
from domain.lifecycle import Operation, apply_transition, check_transition, flag_active_after
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
