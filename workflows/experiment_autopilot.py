"""The experiment workflow acting on its own results (`scheduling_config.autopilot`): the
evaluation activity, the request a decision becomes, and the webhook delivery.

On its timer (`check_every_hours` after the last evaluation, while running), on the signal
`evaluate_rules` and on the update of the same name (REST `…/evaluate_rules/`), the workflow runs
the evaluation activity, then applies the decision through the same path as REST (`_apply`, in
workflows/experiment.py: the
same checks, the approval gate included), with an operation id made of the row version the
decision was judged on and the operation — so a decision is applied at most once, across worker
kills and server restarts, and not at all when anything changed the experiment in between (the
activity refuses another version). Every decision is recorded with its evidence (history query,
audit trail) and, with a webhook, delivered by an abandoned child workflow that retries.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.autopilot import AutopilotActivities, DeliverInput, EvaluateInput, Evaluation
    from domain.autopilot.decide import Decision
    from domain.autopilot.rules import rules_of
    from domain.experiment_messages import TransitionRequest
    from domain.experiment_state import ExperimentState
    from domain.lifecycle import Operation

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


def transition_request(decision: Decision) -> TransitionRequest:
    """The lifecycle request that applies a decision, carrying it as evidence."""
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


async def evaluate(state: ExperimentState) -> Evaluation:
    """Run the rules against fresh results (an activity: it loads events and runs the engine)."""
    evaluation: Evaluation = await workflow.execute_activity_method(
        AutopilotActivities.evaluate,
        EvaluateInput(project_id=state.project_id, experiment_id=state.experiment_id, now=workflow.now()),
        start_to_close_timeout=EVALUATION_TIMEOUT,
        retry_policy=EVALUATION_RETRY,
    )
    return evaluation


async def notify(
    state: ExperimentState, decision: Decision, outcome: str, key: str, detail: str | None = None
) -> None:
    """Deliver the decision to the webhook, if the rules name one (fire and forget, durable)."""
    snapshot = state.snapshot
    rules = rules_of(snapshot.scheduling_config if snapshot else None)
    if rules is None or rules.webhook_url is None:
        return
    delivery_id = f"autopilot-{workflow.info().workflow_id}-{decision.judged_version}-{key}"
    payload: dict[str, Any] = {
        "delivery_id": delivery_id,
        "experiment": {
            "id": state.experiment_id,
            "project_id": state.project_id,
            "name": snapshot.name if snapshot else None,
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
                project_id=state.project_id,
                experiment_id=state.experiment_id,
                url=rules.webhook_url,
                delivery_id=delivery_id,
                payload=payload,
            ),
            id=delivery_id,
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        )
