"""The baselines for bench/lifecycle.py: updates that do nothing, then only what a transition's
history must hold besides the bare update.

- `touch`: the bare update (workflow task + update accepted and completed).
- `touch_with_activity`: also runs a local activity that does nothing (its marker).
- `touch_with_status`: also upserts the ExperimentStatus search attribute (a visibility write), as
  every transition does so that the Temporal UI lists experiments by status.

A transition costs at least the last one; what the REST path spends beyond it is Flagship's own.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

from workflows.search_attributes import EXPERIMENT_STATUS

STATUSES = ("running", "paused")


@activity.defn(name="bench-noop-activity")
async def noop_activity(count: int) -> int:
    return count


@workflow.defn(name="bench-noop")
class NoopWorkflow:
    def __init__(self) -> None:
        self._count = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def touch(self) -> int:
        self._count += 1
        return self._count

    @workflow.update
    async def touch_with_activity(self) -> int:
        return await self._noop_activity()

    @workflow.update
    async def touch_with_status(self) -> int:
        count = await self._noop_activity()
        workflow.upsert_search_attributes([EXPERIMENT_STATUS.value_set(STATUSES[count % 2])])
        return count

    async def _noop_activity(self) -> int:
        self._count += 1
        return await workflow.execute_local_activity(
            noop_activity, self._count, start_to_close_timeout=timedelta(seconds=10)
        )
