"""The baseline for bench/lifecycle.py: a workflow whose update does nothing."""

from __future__ import annotations

from temporalio import workflow


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
