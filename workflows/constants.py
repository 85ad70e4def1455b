"""Names shared by the API, the worker and the tests: one place for each."""

from __future__ import annotations

EXPERIMENT_WORKFLOW_TYPE = "experiment"


def experiment_workflow_id(project_id: int, experiment_id: int) -> str:
    return f"experiment-{project_id}-{experiment_id}"
