"""Checks of `exposure_criteria` and `saved_metrics_ids` (reference §1.7 and §4.3 step 4).

Both are serializer field validators upstream, so their errors carry the field as `attr`.
"""

from __future__ import annotations

from collections.abc import Mapping

import pydantic

from domain.errors import ValidationFailed
from domain.linear_regex import check_filter_regexes
from domain.metrics.schema import ActionsNode, ExperimentEventExposureConfig
from domain.metrics.validation import safe_pydantic_errors

EXPOSURE_CONFIG_KINDS = ("ExperimentEventExposureConfig", "ActionsNode")
EXPOSURE_CONFIG_HINT = (
    "Expected either an event-based config like "
    "{'kind': 'ExperimentEventExposureConfig', 'event': '<event_name>', 'properties': []} "
    "or an action-based config like {'kind': 'ActionsNode', 'id': <action_id>}."
)
_ERROR_VALUE_MAX_LEN = 80  # user values echoed in messages are capped like upstream

MSG_SAVED_METRIC_MISSING = "Saved metric does not exist or does not belong to this project"


def _safe_repr(value: object) -> str:
    rendered = repr(value)
    if len(rendered) > _ERROR_VALUE_MAX_LEN:
        return rendered[:_ERROR_VALUE_MAX_LEN] + "...(truncated)"
    return rendered


def _exposure_error(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, attr="exposure_criteria")


def _check_exposure_config(config: object) -> None:
    if not isinstance(config, dict):
        raise _exposure_error(
            f"exposure_criteria.exposure_config must be an object, got {type(config).__name__}. "
            f"{EXPOSURE_CONFIG_HINT}"
        )
    kind = config.get("kind", "ExperimentEventExposureConfig")  # pydantic's Literal default
    if kind not in EXPOSURE_CONFIG_KINDS:
        raise _exposure_error(
            f"exposure_criteria.exposure_config.kind must be one of {list(EXPOSURE_CONFIG_KINDS)}, "
            f"got {_safe_repr(kind)}. {EXPOSURE_CONFIG_HINT}"
        )
    model = ActionsNode if kind == "ActionsNode" else ExperimentEventExposureConfig
    try:
        model.model_validate(config)
    except pydantic.ValidationError as exc:
        raise _exposure_error(
            f"Invalid exposure_criteria.exposure_config (kind={_safe_repr(kind)}): "
            f"{safe_pydantic_errors(exc)}. {EXPOSURE_CONFIG_HINT}"
        ) from None


def validate_exposure_criteria(exposure_criteria: object) -> None:
    """`validate_experiment_exposure_criteria` (reference §1.7); unknown top-level keys pass."""
    if exposure_criteria is None:
        return
    if not isinstance(exposure_criteria, dict):
        raise _exposure_error(
            f"exposure_criteria must be an object, got {type(exposure_criteria).__name__}. "
            "Expected shape: {'filterTestAccounts': <bool>, 'exposure_config': <object>}."
        )
    if "filterTestAccounts" in exposure_criteria:
        value = exposure_criteria["filterTestAccounts"]
        if not isinstance(value, bool):
            raise _exposure_error(
                "exposure_criteria.filterTestAccounts must be a boolean, got "
                f"{type(value).__name__}: {_safe_repr(value)}."
            )
    if "exposure_config" in exposure_criteria:
        _check_exposure_config(exposure_criteria["exposure_config"])
        check_filter_regexes(exposure_criteria["exposure_config"], "exposure_criteria")


def validate_saved_metrics_ids(value: object) -> None:
    """Shape checks of `saved_metrics_ids` (attr `saved_metrics_ids`); existence is the caller's."""
    if value is None:
        return
    if isinstance(value, str | Mapping) or not isinstance(value, list):
        raise ValidationFailed(
            f'Expected a list of items but got type "{type(value).__name__}".',
            attr="saved_metrics_ids",
            code="not_a_list",
        )
    for item in value:
        detail = None
        if not isinstance(item, Mapping):
            detail = "Saved metric must be an object"
        elif "id" not in item:
            detail = "Saved metric must have an id"
        elif "metadata" in item and not isinstance(item["metadata"], Mapping):
            detail = "Metadata must be an object"
        elif "metadata" in item and "type" not in item["metadata"]:
            detail = "Metadata must have a type key"
        if detail:
            raise ValidationFailed(detail, attr="saved_metrics_ids")
