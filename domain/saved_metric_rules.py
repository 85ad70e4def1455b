"""Saved (shared) metrics (reference §7): query validation and the uuid rules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from domain.errors import ValidationFailed
from domain.linear_regex import check_filter_regexes
from domain.metrics import LEGACY_METRIC_KINDS, safe_pydantic_errors
from domain.metrics.schema import (
    ExperimentFunnelMetric,
    ExperimentMeanMetric,
    ExperimentRatioMetric,
    ExperimentRetentionMetric,
)

MSG_QUERY_REQUIRED = "Query is required to create a saved metric"
MSG_KIND = "Metric query kind must be 'ExperimentMetric'"
MSG_METRIC_TYPE_REQUIRED = "ExperimentMetric requires a metric_type"
MSG_METRIC_TYPE = "ExperimentMetric metric_type must be 'mean', 'funnel', 'ratio', or 'retention'"
MSG_UUID_CHANGED = "Saved metric UUID cannot be changed"

_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "mean": ExperimentMeanMetric,
    "funnel": ExperimentFunnelMetric,
    "ratio": ExperimentRatioMetric,
    "retention": ExperimentRetentionMetric,
}


def validate_saved_metric_query(query: Any) -> None:
    """The service's checks, in its order (attr null: they run outside the serializer fields).

    A schema failure reports pydantic's errors as upstream does, restricted to loc/type/msg so no
    input is echoed back.
    """
    if not query or not isinstance(query, Mapping):
        raise ValidationFailed(MSG_QUERY_REQUIRED)
    kind = query.get("kind")
    if isinstance(kind, str) and kind in LEGACY_METRIC_KINDS:
        raise ValidationFailed(
            f"Legacy metric kind '{kind}' is no longer supported for new saved metrics. "
            "Use 'ExperimentMetric' instead."
        )
    if kind != "ExperimentMetric":
        raise ValidationFailed(MSG_KIND)
    if "metric_type" not in query:
        raise ValidationFailed(MSG_METRIC_TYPE_REQUIRED)
    model = _MODELS.get(query["metric_type"]) if isinstance(query["metric_type"], str) else None
    if model is None:
        raise ValidationFailed(MSG_METRIC_TYPE)
    try:
        model.model_validate(dict(query))
    except pydantic.ValidationError as exc:
        raise ValidationFailed(str(safe_pydantic_errors(exc))) from None
    check_filter_regexes(query, "query")


def normalize_query_uuid(
    query: Mapping[str, Any], existing_uuid: str | None, new_uuid: Callable[[], str]
) -> dict[str, Any]:
    """Create keeps a client uuid (else generates one); update keeps the stored one and refuses
    a different one, so experiments' orderings and results keep pointing at the same metric."""
    normalized = dict(query)
    incoming = normalized.get("uuid")
    if existing_uuid and incoming and incoming != existing_uuid:
        raise ValidationFailed(MSG_UUID_CHANGED)
    if existing_uuid:
        normalized["uuid"] = existing_uuid
    elif not incoming:
        normalized["uuid"] = new_uuid()
    return normalized
