"""The experiment lifecycle as a transition table: PostHog's preconditions and exact messages.

Used by the workflow's update validators (fast rejection, nothing written to history), by the
activities (re-checked against the database inside the transaction) and by the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Literal

from domain.errors import ValidationFailed


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


def check_transition(operation: Operation, facts: LifecycleFacts) -> None:
    """Raise PostHog's 400 for the first failed precondition; return if the operation may run."""
    for failed, message in TRANSITIONS[operation]:
        if failed(facts):
            raise ValidationFailed(message)


def apply_transition(operation: Operation, facts: LifecycleFacts, now: datetime) -> LifecycleFacts:
    """The target state of an allowed operation (absolute values, never toggles)."""
    effects: dict[Operation, Callable[[], LifecycleFacts]] = {
        "launch": lambda: replace(facts, start_date=now, flag_active=True),
        "pause": lambda: replace(facts, flag_active=False),
        "resume": lambda: replace(facts, flag_active=True),
        "end": lambda: replace(facts, end_date=now),
        "reset": lambda: replace(facts, start_date=None, end_date=None, archived=False),
        "archive": lambda: replace(facts, archived=True),
        "unarchive": lambda: replace(facts, archived=False),
        "ship_variant": lambda: replace(facts, end_date=facts.end_date or now),
    }
    return effects[operation]()


def flag_active_after(operation: Operation) -> bool | None:
    """The flag `active` an operation sets, or None when it leaves the flag alone (gotcha 11)."""
    return {"launch": True, "resume": True, "pause": False}.get(operation)
