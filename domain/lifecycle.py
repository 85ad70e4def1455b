"""The whole experiment lifecycle: PostHog's preconditions with their exact messages, and the
complete effect of each operation, as pure functions.

`check` is what the workflow's update validators run against the workflow's state (a rejection
writes nothing to history); `plan` is what the transition activity runs once against the row, in
its transaction: the same check, then the effect it copies onto the row and the flag. Nothing else
checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from domain.errors import ValidationFailed
from domain.experiment_rules import validate_flag_for_experiment
from domain.flag_rules import ensure_variant_on_flag, ship_variant_filters
from domain.scheduling import cancel_pending, has_schedule, with_status


class Status(StrEnum):
    DRAFT = "draft"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


Operation = Literal["launch", "pause", "resume", "end", "reset", "archive", "unarchive", "ship_variant"]
OPERATIONS: tuple[Operation, ...] = (
    "launch",
    "pause",
    "resume",
    "end",
    "reset",
    "archive",
    "unarchive",
    "ship_variant",
)


@dataclass(frozen=True)
class LifecycleFacts:
    """What the preconditions look at; derived from the row and its flag."""

    start_date: datetime | None
    end_date: datetime | None
    archived: bool
    flag_active: bool
    flag_deleted: bool = False
    has_flag: bool = True
    flag_variant_keys: tuple[str, ...] = ()
    scheduling_config: Mapping[str, Any] | None = None

    @property
    def launched(self) -> bool:
        return self.start_date is not None

    @property
    def stopped(self) -> bool:
        return self.launched and self.end_date is not None

    @property
    def running(self) -> bool:
        return self.launched and self.end_date is None


def stored_status(start_date: datetime | None, end_date: datetime | None) -> Status:
    """The status PostHog stores on save: `end_date` without `start_date` is still a draft."""
    if start_date is None:
        return Status.DRAFT
    return Status.STOPPED if end_date is not None else Status.RUNNING


def status_of(facts: LifecycleFacts) -> Status:
    """The API's status: `paused` is running with an inactive flag, never stored."""
    status = stored_status(facts.start_date, facts.end_date)
    if status is Status.RUNNING and not facts.flag_active:
        return Status.PAUSED
    return status


Check = tuple[Callable[[LifecycleFacts], bool], str]

NOT_LAUNCHED = "Experiment has not been launched yet."
ALREADY_ENDED = "Experiment has already ended."

# For each operation, the failing predicates in the order PostHog checks them; the first wins.
TRANSITIONS: dict[Operation, tuple[Check, ...]] = {
    "launch": (
        (lambda f: f.launched, "Experiment has already been launched."),
        (
            lambda f: f.flag_deleted,
            "Experiment cannot be launched because its feature flag has been deleted.",
        ),
    ),
    "pause": (
        (lambda f: not f.launched, NOT_LAUNCHED),
        (lambda f: f.stopped, ALREADY_ENDED),
        (lambda f: not f.has_flag, "Experiment does not have a feature flag linked."),
        (lambda f: not f.flag_active, "Experiment is already paused."),
    ),
    "resume": (
        (lambda f: not f.launched, NOT_LAUNCHED),
        (lambda f: f.stopped, ALREADY_ENDED),
        (lambda f: not f.has_flag, "Experiment does not have a feature flag linked."),
        (lambda f: f.flag_active, "Experiment is not paused."),
    ),
    "end": (
        (lambda f: not f.launched, NOT_LAUNCHED),
        (lambda f: f.stopped, ALREADY_ENDED),
    ),
    "reset": ((lambda f: not f.launched, "Experiment is already in draft state."),),
    "archive": (
        (lambda f: f.archived, "Experiment is already archived."),
        (lambda f: not f.stopped, "Experiment must be ended before it can be archived."),
    ),
    "unarchive": ((lambda f: not f.archived, "Experiment is not archived."),),
    "ship_variant": (
        (lambda f: not f.launched, NOT_LAUNCHED),
        (lambda f: not f.has_flag, "Experiment does not have a linked feature flag."),
    ),
}


@dataclass(frozen=True)
class Intent:
    """What a request asks of its operation beyond the operation itself."""

    via: str = "rest"
    variant_key: str | None = None
    release_to_everyone: bool = False
    conclusion: str | None = None
    conclusion_comment: str | None = None
    conclusion_provided: bool = False  # ship_variant sets the conclusion only when one was sent


@dataclass(frozen=True)
class Effect:
    """Everything an allowed operation changes, as absolute values (never toggles)."""

    start_date: datetime | None
    end_date: datetime | None
    archived: bool
    flag_active: bool | None  # None: the flag's `active` is left alone
    ship_variant_key: str | None  # the flag is rewritten to give this variant 100 % (reference §5)
    release_to_everyone: bool
    conclusion: tuple[str | None, str | None] | None  # (conclusion, comment); None: left alone
    scheduling_config: Mapping[str, Any] | None
    refresh_fingerprints: bool  # they depend on start_date


def _variant_filters(keys: tuple[str, ...]) -> dict[str, Any]:
    """Variant keys in the shape the flag rules read (they take flag filters)."""
    return {"multivariate": {"variants": [{"key": key} for key in keys]}}


def check(operation: Operation, facts: LifecycleFacts, intent: Intent) -> None:
    """Raise PostHog's 400 for the first failed precondition; return if the operation may run."""
    for failed, message in TRANSITIONS[operation]:
        if failed(facts):
            raise ValidationFailed(message)
    if operation == "launch":
        validate_flag_for_experiment(_variant_filters(facts.flag_variant_keys))
    if operation == "ship_variant":
        ensure_variant_on_flag(_variant_filters(facts.flag_variant_keys), intent.variant_key or "")


def plan(operation: Operation, facts: LifecycleFacts, intent: Intent, now: datetime) -> Effect:
    """Check, then the complete effect of the operation applied at `now`."""
    check(operation, facts, intent)
    start, end, archived = facts.start_date, facts.end_date, facts.archived
    if operation == "launch":
        start = now
    elif operation in ("end", "ship_variant"):
        end = end or now
    elif operation == "reset":
        start, end, archived = None, None, False
    elif operation in ("archive", "unarchive"):
        archived = operation == "archive"
    return Effect(
        start_date=start,
        end_date=end,
        archived=archived,
        flag_active=flag_active_after(operation),
        ship_variant_key=intent.variant_key if operation == "ship_variant" else None,
        release_to_everyone=intent.release_to_everyone,
        conclusion=_conclusion(operation, intent),
        scheduling_config=_schedule(operation, facts, intent, now, start, end),
        refresh_fingerprints=operation == "launch",
    )


def _conclusion(operation: Operation, intent: Intent) -> tuple[str | None, str | None] | None:
    if operation == "end":
        # PostHog's end overwrites both with the sent values, null when omitted (gotcha 6).
        return intent.conclusion, intent.conclusion_comment
    if operation == "reset":
        return None, None
    if operation == "ship_variant" and intent.conclusion_provided:
        return intent.conclusion, intent.conclusion_comment
    return None


def _schedule(
    operation: Operation,
    facts: LifecycleFacts,
    intent: Intent,
    now: datetime,
    start: datetime | None,
    end: datetime | None,
) -> Mapping[str, Any] | None:
    """The timer marks what it did in the same write; a manual end or reset cancels it."""
    config = facts.scheduling_config
    if not has_schedule(config):
        return config
    if intent.via == "timer":
        return with_status(config, "launch" if operation == "launch" else "end", "done", now)
    ended_now = operation == "ship_variant" and facts.end_date is None
    if operation in ("end", "reset") or ended_now:
        return cancel_pending(config, start_date=start, end_date=end, at=now, why=f"manual {operation}")
    return config


def flag_active_after(operation: Operation) -> bool | None:
    """The flag `active` an operation sets, or None when it leaves the flag alone (gotcha 11)."""
    return {"launch": True, "resume": True, "pause": False}.get(operation)


def rewritten_filters(effect: Effect, filters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The flag's new filters when the effect ships a variant (None: unchanged)."""
    if effect.ship_variant_key is None:
        return None
    return ship_variant_filters(filters, effect.ship_variant_key, effect.release_to_everyone)
