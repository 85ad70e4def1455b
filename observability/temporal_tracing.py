"""Temporal's OpenTelemetryPlugin, minus the span around a workflow's whole run.

An experiment workflow runs for months. The plugin's `RunWorkflow` span would stay open all that
time, and be closed from another context when the worker evicts the workflow from its cache, where
OpenTelemetry logs "Failed to detach context" with a traceback each time. Updates, signals,
queries, activities and client calls keep their spans; the run loop's own calls (timer-driven
transitions) start traces of their own.

Same pieces as `temporalio.contrib.opentelemetry.OpenTelemetryPlugin` (1.35): its interceptor
with Temporal spans on, and `opentelemetry` passed through the workflow sandbox.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.contrib.opentelemetry import OpenTelemetryInterceptor
from temporalio.plugin import SimplePlugin
from temporalio.worker import (
    ExecuteWorkflowInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner


class _Interceptor(OpenTelemetryInterceptor):
    def workflow_interceptor_class(  # type: ignore[override]
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        traced: type[WorkflowInboundInterceptor] = super().workflow_interceptor_class(input)

        class WithoutRunSpan(traced):  # type: ignore[valid-type,misc]
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                return await self.next.execute_workflow(input)

        return WithoutRunSpan


def _passthrough(runner: WorkflowRunner | None) -> WorkflowRunner:
    if runner is None:
        raise ValueError("the tracing plugin needs the worker's workflow runner")
    if isinstance(runner, SandboxedWorkflowRunner):
        restrictions = runner.restrictions.with_passthrough_modules("opentelemetry")
        return dataclasses.replace(runner, restrictions=restrictions)
    return runner


class TracingPlugin(SimplePlugin):
    """A class of its own: the worker warns when a client plugin and a worker plugin share a type."""

    def __init__(self) -> None:
        super().__init__(
            "flagship.OpenTelemetry",
            interceptors=[_Interceptor(add_temporal_spans=True)],
            workflow_runner=_passthrough,
        )
