"""Golden workflow histories (tests/histories/*.json), recorded by tests and replayed by
tests/workflows/test_replay.py against the current workflow code."""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.experiment import ExperimentWorkflow
from workflows.timeseries import TIMESERIES_WORKFLOWS

HISTORIES = Path(__file__).resolve().parents[1] / "histories"


def replayer() -> Replayer:
    """Every workflow type with recorded histories (the replayer picks by the history's type)."""
    return Replayer(
        workflows=[ExperimentWorkflow, *TIMESERIES_WORKFLOWS], data_converter=pydantic_data_converter
    )


async def record_golden(history: WorkflowHistory, name: str) -> None:
    """Write `history` as golden `name` when `RECORD_HISTORY=name` (never over an existing one)."""
    if os.environ.get("RECORD_HISTORY") != name:
        return
    target = HISTORIES / f"{name}.json"
    assert not target.exists(), f"{target} exists: goldens are never overwritten"
    target.write_text(history.to_json())
