"""Applied operations: what each write produced, and the fence the API sets when it gives up.

`applied_operation` is the idempotency table of the activities (activities/rows.py): one row per
operation id, written in the same transaction as the change, with the snapshot and the rows the
change left. The API reads it to answer with exactly that state, and fences an operation id
whose update it stopped waiting for, so nothing is applied after its caller heard it was not.
Helpers never commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from db.tables import AppliedOperation, Experiment, FeatureFlag

# `operation` of a fence row; it carries no result.
ABANDONED = "abandoned"


def row_image(experiment: Experiment, flag: FeatureFlag | None) -> dict[str, Any]:
    """The experiment and flag rows as JSON, stored with the operation that produced them."""
    return {
        "experiment": experiment.model_dump(mode="json"),
        "flag": flag.model_dump(mode="json") if flag is not None else None,
    }


def rows_from_image(image: dict[str, Any]) -> tuple[Experiment, FeatureFlag | None]:
    flag = image.get("flag")
    experiment = Experiment.model_validate(image["experiment"])
    return experiment, (FeatureFlag.model_validate(flag) if flag is not None else None)


def is_applied(row: AppliedOperation | None) -> bool:
    return row is not None and row.operation != ABANDONED and row.result is not None


async def applied_operation(session: AsyncSession, op_id: str) -> AppliedOperation | None:
    return await session.get(AppliedOperation, op_id, populate_existing=True)


async def fence(session: AsyncSession, op_id: str, experiment_id: int) -> AppliedOperation | None:
    """Make sure `op_id` is never applied from now on, unless it already was: returns its row then.

    The insert races the activity's own insert of the same key: whichever commits first wins (on
    PostgreSQL the loser waits for the winner's transaction; SQLite has one writer), so the answer
    is final either way."""
    values = {"op_id": op_id, "experiment_id": experiment_id, "operation": ABANDONED, "result": None}
    table = AppliedOperation.__table__  # type: ignore[attr-defined]
    bind = session.get_bind()
    dialect_insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    await session.exec(dialect_insert(table).values(values).on_conflict_do_nothing())  # type: ignore[call-overload]
    row = await applied_operation(session, op_id)
    return row if is_applied(row) else None


async def clear_fence(session: AsyncSession, op_id: str) -> None:
    """A retry with the same Idempotency-Key may apply what an earlier attempt gave up on."""
    await session.exec(  # type: ignore[call-overload]
        delete(AppliedOperation).where(
            col(AppliedOperation.op_id) == op_id, col(AppliedOperation.operation) == ABANDONED
        )
    )
