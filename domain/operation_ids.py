"""Operation ids: the idempotency keys of the experiment's SQL writes (`applied_operation.op_id`).

One place builds them and one parses them back. Updates are keyed by their update id (the REST
`Idempotency-Key`, else a uuid), so a retried request finds its first result; signal and timer
operations by the row version they act on, so a redelivered signal or a replayed timer applies once;
an approved change by its change request.
"""

from __future__ import annotations

from typing import Literal


def update_operation_id(workflow_id: str, update_id: str) -> str:
    return f"update:{workflow_id}:{update_id}"


def update_id_of(workflow_id: str, op_id: str) -> str | None:
    """The update id inside an update's operation id (None for other operations)."""
    prefix = update_operation_id(workflow_id, "")
    return op_id.removeprefix(prefix) if op_id.startswith(prefix) else None


def event_operation_id(
    workflow_id: str, version: int, operation: str, source: Literal["signal", "timer", "autopilot"] | None
) -> str:
    """A transition without an update: a signal, a timer, an autopilot decision (keyed by the row
    version it was judged on), or a handler run outside an update."""
    base = f"{workflow_id}:{version}:{operation}"
    return f"{base}:{source}" if source else base


def change_request_operation_id(change_request_id: str) -> str:
    return f"cr:{change_request_id}"
