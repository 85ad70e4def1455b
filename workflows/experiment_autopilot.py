"""The experiment workflow acting on its own results (`scheduling_config.autopilot`).

On its timer (`check_every_hours` after the last evaluation, while running), on the signal
`evaluate_rules` and on the update of the same name (REST `…/evaluate_rules/`), the workflow runs
the evaluation activity, then applies the decision through the same path as REST (`_apply`: the
same checks, the approval gate included), with an operation id made of the row version the
decision was judged on and the operation — so a decision is applied at most once, across worker
kills and server restarts, and not at all when anything changed the experiment in between (the
activity refuses another version). Every decision is recorded with its evidence (history query,
audit trail) and, with a webhook, delivered by an abandoned child workflow that retries.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.autopilot import AutopilotActivities, DeliverInput, EvaluateInput, Evaluation
    from domain import operation_ids
    from domain.autopilot.decide import Decision
    from domain.autopilot.rules import rules_of
    from domain.autopilot.timing import next_evaluation
    from domain.errors import Unavailable
    from domain.experiment_messages import TransitionRequest
    from domain.lifecycle import Operation
    from workflows import experiment_support as support
    from workflows.experiment_signals import ExperimentSignals

# An evaluation loads the events of the rules' metrics and runs the engine: minutes at most.
EVALUATION_TIMEOUT = timedelta(minutes=10)
EVALUATION_RETRY = RetryPolicy(maximum_attempts=3, non_retryable_error_types=["NotFound"])
# A failing webhook is retried for a day (growing waits up to 10 minutes), then given up, loudly.
DELIVERY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=10))
DELIVERY_DEADLINE = timedelta(days=1)

# The lifecycle operation each decision takes.
OPERATIONS: dict[str, Operation] = {
    "pause": "pause",
    "ship_control": "ship_variant",
    "ship_variant": "ship_variant",
    "end": "end",
}


@workflow.defn(name="autopilot-notify")
class AutopilotNotifyWorkflow:
    """Delivers one decision to the experiment's webhook, retrying until it succeeds or a day has
    passed; each failed attempt is in the experiment's audit trail."""

    @workflow.run
    async def run(self, inp: DeliverInput) -> int:
        status: int = await workflow.execute_activity_method(
            AutopilotActivities.deliver,
            inp,
            schedule_to_close_timeout=DELIVERY_DEADLINE,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=DELIVERY_RETRY,
        )
        return status


def _request(decision: Decision) -> TransitionRequest:
    evidence = decision.model_dump(mode="json")
    shipping = decision.action in ("ship_variant", "ship_control")
    return TransitionRequest(
        via="autopilot",
        variant_key=decision.variant_key if shipping else None,
        conclusion=decision.conclusion,
        conclusion_comment=f"Autopilot: {decision.summary}" if decision.conclusion else None,
        conclusion_provided=decision.conclusion is not None,
        expected_version=decision.judged_version,
        evidence=evidence,
    )


class ExperimentAutopilot(ExperimentSignals):
    # When an evaluation could not run (its activity failed): the next one waits a full interval.
    _evaluation_failed_at: datetime | None = None

    def _evaluation_due(self) -> datetime | None:
        snapshot = self._snapshot
        if snapshot is None or snapshot.deleted:
            return None
        due = next_evaluation(
            snapshot.scheduling_config,
            start_date=snapshot.start_date,
            end_date=snapshot.end_date,
            running=snapshot.status.value == "running",
        )
        failed = self._evaluation_failed_at
        rules = rules_of(snapshot.scheduling_config)
        if due is not None and failed is not None and rules is not None and due <= failed:
            return failed + timedelta(hours=rules.check_every_hours)
        return due

    @workflow.signal(name="evaluate_rules")
    async def evaluate_rules_signal(self) -> None:
        await self._evaluate()

    async def _evaluate_due(self, due: datetime) -> None:
        at = self._evaluation_due()
        if at is not None and at <= due:
            await self._evaluate()

    async def _evaluate(self, *, strict: bool = False) -> Decision | None:
        """Evaluate now and act on the decision; returns it (None: no rules, or not running).
        `strict`: a failed evaluation raises (a caller waits), else it is recorded and retried later."""
        async with self._lock:
            try:
                evaluation: Evaluation = await workflow.execute_activity_method(
                    AutopilotActivities.evaluate,
                    EvaluateInput(
                        project_id=self._project_id, experiment_id=self._experiment_id, now=workflow.now()
                    ),
                    start_to_close_timeout=EVALUATION_TIMEOUT,
                    retry_policy=EVALUATION_RETRY,
                )
            except ActivityError as err:
                self._evaluation_failed_at = workflow.now()
                detail = f"the autopilot could not evaluate its rules: {err.cause or err}"
                await self._record(self._note("evaluate_rules", "failed", "autopilot", None, detail))
                if strict:
                    raise support.rejection(Unavailable(detail[:500])) from None
                return None
            self._evaluation_failed_at = None
            self._snapshot = evaluation.snapshot
            self._publish(evaluation.snapshot)
            decision = evaluation.decision
            if decision is not None and decision.acts:
                await self._act(decision)
            self._wake = True
            return decision

    async def _act(self, decision: Decision) -> None:
        evidence = decision.model_dump(mode="json")
        operation = OPERATIONS.get(decision.action)
        if decision.mode == "shadow" or operation is None:
            outcome = "shadow" if decision.mode == "shadow" else "notified"
            entry = self._note(
                operation or decision.action, outcome, "autopilot", None, decision.summary, evidence
            )
            await self._record(entry)
            await self._notify(decision, outcome, f"{decision.action}:{outcome}")
            return
        op_id = operation_ids.event_operation_id(
            workflow.info().workflow_id, decision.judged_version, operation, "autopilot"
        )
        try:
            await self._apply(operation, _request(decision), op_id)
        except ApplicationError as err:
            outcome = "approval_required" if err.type == "ApprovalRequired" else "rejected"
            if outcome == "rejected":
                await self._record(
                    self._note(operation, "rejected", "autopilot", None, err.message, evidence)
                )
            await self._notify(decision, outcome, op_id, err.message)
            return
        await self._notify(decision, "applied", op_id)

    async def _notify(self, decision: Decision, outcome: str, key: str, detail: str | None = None) -> None:
        """Deliver the decision to the webhook, if the rules name one (fire and forget, durable)."""
        rules = rules_of(self._snapshot.scheduling_config if self._snapshot else None)
        if rules is None or rules.webhook_url is None:
            return
        delivery_id = f"autopilot-{workflow.info().workflow_id}-{decision.judged_version}-{key}"
        payload: dict[str, Any] = {
            "delivery_id": delivery_id,
            "experiment": {
                "id": self._experiment_id,
                "project_id": self._project_id,
                "name": self._snapshot.name if self._snapshot else None,
            },
            "outcome": outcome,  # applied | approval_required | rejected | shadow | notified
            "detail": detail,
            "decision": decision.model_dump(mode="json"),
        }
        # Already started: this decision was delivered (or is being delivered) already.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                AutopilotNotifyWorkflow.run,
                DeliverInput(
                    project_id=self._project_id,
                    experiment_id=self._experiment_id,
                    url=rules.webhook_url,
                    delivery_id=delivery_id,
                    payload=payload,
                ),
                id=delivery_id,
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )
