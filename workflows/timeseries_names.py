"""Workflow types, ids and schedule id of the timeseries work, shared by the API, the worker and the
workflows (kept apart from workflows/timeseries.py, which references activities)."""

from __future__ import annotations

RECALCULATION_WORKFLOW_TYPE = "experiment-timeseries-recalculation"
EXPERIMENT_RECALCULATION_WORKFLOW_TYPE = "experiment-metrics-recalculation"
DAILY_WORKFLOW_TYPE = "experiment-daily-recalculation"
DAILY_SCHEDULE_ID = "experiment-daily-recalculation"


def recalculation_workflow_id(recalculation_id: str) -> str:
    return f"experiment-recalculation-{recalculation_id}"


def experiment_recalculation_workflow_id(project_id: int, experiment_id: int, reason: str) -> str:
    return f"experiment-metrics-recalculation-{project_id}-{experiment_id}-{reason}"
