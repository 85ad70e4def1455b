"""Pydantic mirror of the `posthog.schema` models an experiment metric is validated against.

Class, enum and field names, field order and `extra="forbid"` follow upstream on purpose: pydantic
puts class names into error locations (`('ExperimentMeanMetric', 'source', 'EventsNode', 'id')`) and
reports errors in field order, and PostHog returns those lists verbatim in its 400 messages.
Property filters and `breakdownFilter` are kept as plain objects: only their container shape (a list,
an object) is checked here, the 18-way property-filter union is not reproduced.
"""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

# Loose stand-ins for upstream's property-filter union: a list of objects.
PropertyList = list[dict[str, Any]]


class MathGroupTypeIndex(float, Enum):
    NUMBER_0 = 0
    NUMBER_1 = 1
    NUMBER_2 = 2
    NUMBER_3 = 3
    NUMBER_4 = 4


class BaseMathType(StrEnum):
    TOTAL = "total"
    DAU = "dau"
    WEEKLY_ACTIVE = "weekly_active"
    MONTHLY_ACTIVE = "monthly_active"
    UNIQUE_SESSION = "unique_session"
    FIRST_TIME_FOR_USER = "first_time_for_user"
    FIRST_MATCHING_EVENT_FOR_USER = "first_matching_event_for_user"


class FunnelMathType(StrEnum):
    TOTAL = "total"
    FIRST_TIME_FOR_USER = "first_time_for_user"
    FIRST_TIME_FOR_USER_WITH_FILTERS = "first_time_for_user_with_filters"


class PropertyMathType(StrEnum):
    AVG = "avg"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    MEDIAN = "median"
    P75 = "p75"
    P90 = "p90"
    P95 = "p95"
    P99 = "p99"


class CountPerActorMathType(StrEnum):
    AVG_COUNT_PER_ACTOR = "avg_count_per_actor"
    MIN_COUNT_PER_ACTOR = "min_count_per_actor"
    MAX_COUNT_PER_ACTOR = "max_count_per_actor"
    MEDIAN_COUNT_PER_ACTOR = "median_count_per_actor"
    P75_COUNT_PER_ACTOR = "p75_count_per_actor"
    P90_COUNT_PER_ACTOR = "p90_count_per_actor"
    P95_COUNT_PER_ACTOR = "p95_count_per_actor"
    P99_COUNT_PER_ACTOR = "p99_count_per_actor"


class ExperimentMetricMathType(StrEnum):
    TOTAL = "total"
    SUM = "sum"
    UNIQUE_SESSION = "unique_session"
    MIN = "min"
    MAX = "max"
    AVG = "avg"
    DAU = "dau"
    UNIQUE_GROUP = "unique_group"
    HOGQL = "hogql"


class CalendarHeatmapMathType(StrEnum):
    TOTAL = "total"
    DAU = "dau"


class FunnelConversionWindowTimeUnit(StrEnum):
    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class ExperimentMetricGoal(StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class StepOrderValue(StrEnum):
    STRICT = "strict"
    UNORDERED = "unordered"
    ORDERED = "ordered"


class StartHandling(StrEnum):
    FIRST_SEEN = "first_seen"
    LAST_SEEN = "last_seen"


Math = (
    BaseMathType
    | FunnelMathType
    | PropertyMathType
    | CountPerActorMathType
    | ExperimentMetricMathType
    | CalendarHeatmapMathType
    | Literal["unique_group"]
    | Literal["hogql"]
    | None
)

_VERSION_DESCRIPTION = "version of the node, used for schema migrations"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventsNode(_Strict):
    custom_name: str | None = None
    event: str | None = Field(default=None, description="The event or `null` for all events.")
    fixedProperties: PropertyList | None = None
    kind: Literal["EventsNode"] = "EventsNode"
    limit: int | None = None
    math: Math = None
    math_group_type_index: MathGroupTypeIndex | None = None
    math_hogql: str | None = None
    math_multiplier: float | None = None
    math_property: str | None = None
    math_property_revenue_currency: dict[str, Any] | None = None
    math_property_type: str | None = None
    name: str | None = None
    optionalInFunnel: bool | None = None
    orderBy: list[str] | None = None
    properties: PropertyList | None = None
    response: dict[str, Any] | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ActionsNode(_Strict):
    custom_name: str | None = None
    fixedProperties: PropertyList | None = None
    id: int
    kind: Literal["ActionsNode"] = "ActionsNode"
    math: Math = None
    math_group_type_index: MathGroupTypeIndex | None = None
    math_hogql: str | None = None
    math_multiplier: float | None = None
    math_property: str | None = None
    math_property_revenue_currency: dict[str, Any] | None = None
    math_property_type: str | None = None
    name: str | None = None
    optionalInFunnel: bool | None = None
    properties: PropertyList | None = None
    response: dict[str, Any] | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ExperimentDataWarehouseNode(_Strict):
    custom_name: str | None = None
    data_warehouse_join_key: str
    events_join_key: str
    fixedProperties: PropertyList | None = None
    kind: Literal["ExperimentDataWarehouseNode"] = "ExperimentDataWarehouseNode"
    math: Math = None
    math_group_type_index: MathGroupTypeIndex | None = None
    math_hogql: str | None = None
    math_multiplier: float | None = None
    math_property: str | None = None
    math_property_revenue_currency: dict[str, Any] | None = None
    math_property_type: str | None = None
    name: str | None = None
    optionalInFunnel: bool | None = None
    properties: PropertyList | None = None
    response: dict[str, Any] | None = None
    table_name: str
    timestamp_field: str
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


MetricSource = EventsNode | ActionsNode | ExperimentDataWarehouseNode


class ExperimentMetricOutlierHandling(_Strict):
    ignore_zeros: bool | None = None
    lower_bound_percentile: float | None = None
    upper_bound_percentile: float | None = None


class ExperimentMeanMetric(_Strict):
    breakdownFilter: dict[str, Any] | None = None
    conversion_window: int | None = None
    conversion_window_unit: FunnelConversionWindowTimeUnit | None = None
    fingerprint: str | None = None
    goal: ExperimentMetricGoal | None = None
    ignore_zeros: bool | None = None
    isSharedMetric: bool | None = None
    kind: Literal["ExperimentMetric"] = "ExperimentMetric"
    lower_bound_percentile: float | None = None
    metric_type: Literal["mean"] = "mean"
    name: str | None = None
    response: dict[str, Any] | None = None
    sharedMetricId: float | None = None
    source: MetricSource
    upper_bound_percentile: float | None = None
    uuid: str | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ExperimentFunnelMetric(_Strict):
    breakdownFilter: dict[str, Any] | None = None
    conversion_window: int | None = None
    conversion_window_unit: FunnelConversionWindowTimeUnit | None = None
    fingerprint: str | None = None
    funnel_order_type: StepOrderValue | None = None
    goal: ExperimentMetricGoal | None = None
    isSharedMetric: bool | None = None
    kind: Literal["ExperimentMetric"] = "ExperimentMetric"
    metric_type: Literal["funnel"] = "funnel"
    name: str | None = None
    response: dict[str, Any] | None = None
    series: list[MetricSource]
    sharedMetricId: float | None = None
    uuid: str | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ExperimentRatioMetric(_Strict):
    breakdownFilter: dict[str, Any] | None = None
    conversion_window: int | None = None
    conversion_window_unit: FunnelConversionWindowTimeUnit | None = None
    denominator: MetricSource
    denominator_outlier_handling: ExperimentMetricOutlierHandling | None = None
    fingerprint: str | None = None
    goal: ExperimentMetricGoal | None = None
    isSharedMetric: bool | None = None
    kind: Literal["ExperimentMetric"] = "ExperimentMetric"
    metric_type: Literal["ratio"] = "ratio"
    name: str | None = None
    numerator: MetricSource
    numerator_outlier_handling: ExperimentMetricOutlierHandling | None = None
    response: dict[str, Any] | None = None
    sharedMetricId: float | None = None
    uuid: str | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ExperimentRetentionMetric(_Strict):
    breakdownFilter: dict[str, Any] | None = None
    completion_event: MetricSource
    conversion_window: int | None = None
    conversion_window_unit: FunnelConversionWindowTimeUnit | None = None
    fingerprint: str | None = None
    goal: ExperimentMetricGoal | None = None
    isSharedMetric: bool | None = None
    kind: Literal["ExperimentMetric"] = "ExperimentMetric"
    metric_type: Literal["retention"] = "retention"
    name: str | None = None
    response: dict[str, Any] | None = None
    retention_window_end: int
    retention_window_start: int
    retention_window_unit: FunnelConversionWindowTimeUnit
    sharedMetricId: float | None = None
    start_event: MetricSource
    start_handling: StartHandling
    uuid: str | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)


class ExperimentMetric(
    RootModel[
        ExperimentMeanMetric | ExperimentFunnelMetric | ExperimentRatioMetric | ExperimentRetentionMetric
    ]
):
    root: ExperimentMeanMetric | ExperimentFunnelMetric | ExperimentRatioMetric | ExperimentRetentionMetric


class ExperimentEventExposureConfig(_Strict):
    event: str
    kind: Literal["ExperimentEventExposureConfig"] = "ExperimentEventExposureConfig"
    properties: PropertyList
    response: dict[str, Any] | None = None
    version: float | None = Field(default=None, description=_VERSION_DESCRIPTION)
