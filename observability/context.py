"""The ids that tie a REST call, its workflow update and its activities together in the logs.

One mutable `LogContext` per HTTP request or activity execution, held in a context variable. Inner
code fills in what it learns (`bind`): the middleware's access-log line, written after the
endpoint returned, sees it even when the endpoint ran in a copied context.
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import count

# An incoming X-Request-ID is kept only when it is short and plain: it is echoed and logged.
_VALID_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")
# Generated ids: a random per-process prefix and a counter, unique without a syscall per request.
_PREFIX = os.urandom(6).hex()
_COUNTER = count(1)


@dataclass(slots=True)
class LogContext:
    request_id: str | None = None
    project_id: int | None = None
    experiment_id: int | None = None
    workflow_id: str | None = None


FIELDS = ("request_id", "project_id", "experiment_id", "workflow_id")
CURRENT: ContextVar[LogContext | None] = ContextVar("flagship_log_context", default=None)


def current() -> LogContext | None:
    return CURRENT.get()


def current_request_id() -> str | None:
    ctx = CURRENT.get()
    return ctx.request_id if ctx is not None else None


def bind(
    *, project_id: int | None = None, experiment_id: int | None = None, workflow_id: str | None = None
) -> None:
    """Add ids to the current request's context (no-op outside a request or activity)."""
    ctx = CURRENT.get()
    if ctx is None:
        return
    if project_id is not None:
        ctx.project_id = project_id
    if experiment_id is not None:
        ctx.experiment_id = experiment_id
    if workflow_id is not None:
        ctx.workflow_id = workflow_id


def new_request_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


def accepted_request_id(raw: bytes | None) -> str | None:
    """The caller's X-Request-ID when it is safe to echo and log, else None (we generate one)."""
    if raw is None or _VALID_ID.fullmatch(raw) is None:
        return None
    return raw.decode("ascii")
