"""Messages between the timeseries workflows and their activities: pydantic DTOs, ids not rows.

Times are tz-aware and always come from the workflow (`workflow.now()`), so every retry of an
activity works on the same day range and the same `query_to`.
"""

from __future__ import annotations

from datetime import date

from pydantic import AwareDatetime, BaseModel, Field


class RecalculationInput(BaseModel):
    """Input of `experiment-timeseries-recalculation` (PostHog's `{recalculation_id}`)."""

    recalculation_id: str


class BackfillInput(BaseModel):
    recalculation_id: str
    now: AwareDatetime  # "today" of the day range; fixed for all attempts


class BackfillResult(BaseModel):
    recalculation_id: str
    experiment_id: int
    metric_uuid: str
    days_processed: int
    start_date: date | None = None
    end_date: date | None = None


class ExperimentRecalculationInput(BaseModel):
    """Recalculate every metric of one experiment (launch, end, or an operator's request)."""

    project_id: int
    experiment_id: int
    reason: str = "manual"


class DailyInput(BaseModel):
    """Input of the hourly schedule's workflow; `hour` (UTC) defaults to the scheduled time's hour."""

    hour: int | None = Field(default=None, ge=0, le=23)


class DailyDiscoverInput(BaseModel):
    hour: int
    now: AwareDatetime


class DailyTarget(BaseModel):
    project_id: int
    experiment_id: int


class DailyRefreshInput(BaseModel):
    target: DailyTarget
    now: AwareDatetime


class DailyOutcome(BaseModel):
    experiment_id: int
    succeeded: int = 0
    failed: int = 0
    # The experiment has autopilot rules: they are evaluated again on the refreshed day.
    autopilot: bool = False


class DailySummary(BaseModel):
    hour: int
    total: int
    succeeded: int
    failed: int
