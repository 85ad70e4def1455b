"""Experiment validation and transformation rules of PostHog's ExperimentSerializer / ExperimentService.

Pure functions over JSON-like values. `attr` follows reference §2: field validators carry their field
(`parameters`, `exposure_criteria`, `saved_metrics_ids`), service and `validate()` errors carry none.
Update rules take the request body and work on DRF's *validated-data* key names
(`get_feature_flag_key`, `holdout`), which `writable_fields` derives from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from domain.errors import ValidationFailed
from domain.flag_rules import flag_variant_keys, flag_variants

# Re-exported: these field checks live next to the metric schema they validate against.
from domain.metrics.exposure import validate_exposure_criteria as validate_exposure_criteria
from domain.metrics.exposure import validate_saved_metrics_ids as validate_saved_metrics_ids
from domain.stats.config import check_stats_options

MAX_VARIANTS = 21  # "must be less than 21"
VALID_STATS_METHODS = ("bayesian", "frequentist")

MSG_MIN_VARIANTS = "Feature flag must have at least 2 variants (control and at least one test variant)"
MSG_FLAG_NO_CONTROL = "Feature flag must have a variant with key 'control'"
MSG_FLAG_DELETED_LAUNCH = "Experiment cannot be launched because its feature flag has been deleted."
MSG_DATE_ORDER = "End date must be after start date"
MSG_RESTORE_DELETED_FLAG = (
    "Cannot restore experiment: the linked feature flag has been deleted. "
    "Restore the feature flag first, then restore the experiment."
)
MSG_RUNNING_VARIANTS = "Can't update feature_flag_variants on Experiment"
MSG_RUNNING_HOLDOUT = "Can't update holdout on running Experiment"
MSG_GLOBAL_PROPERTIES = "Experiments do not support global filter properties"

# Request field -> validated-data key for the writable ExperimentSerializer fields; everything else
# (read-only or unknown) is silently ignored by DRF and therefore dropped here too.
_WRITABLE_FIELDS: dict[str, str] = {
    **{
        name: name
        for name in (
            "name", "description", "start_date", "end_date", "parameters", "secondary_metrics",
            "saved_metrics_ids", "filters", "archived", "deleted", "type", "exposure_criteria", "metrics",
            "metrics_secondary", "stats_config", "scheduling_config", "allow_unknown_events",
            "_create_in_folder", "conclusion", "conclusion_comment", "primary_metrics_ordered_uuids",
            "secondary_metrics_ordered_uuids", "only_count_matured_users", "update_feature_flag_params",
        )
    },
    # `holdout` itself is read-only: a GET response echoed back must not look like a holdout change.
    "feature_flag_key": "get_feature_flag_key",
    "holdout_id": "holdout",
}  # fmt: skip

# ExperimentSerializer.create's expected validated-data keys.
CREATE_KEYS = frozenset(
    {
        "name", "get_feature_flag_key", "description", "type", "parameters", "metrics", "metrics_secondary",
        "secondary_metrics", "primary_metrics_ordered_uuids", "secondary_metrics_ordered_uuids",
        "saved_metrics_ids", "stats_config", "exposure_criteria", "only_count_matured_users", "start_date",
        "end_date", "archived", "deleted", "conclusion", "conclusion_comment", "holdout", "filters",
        "scheduling_config", "_create_in_folder", "allow_unknown_events",
    }
)  # fmt: skip
UPDATE_KEYS = frozenset(
    {
        "name", "description", "start_date", "end_date", "filters", "parameters", "archived", "deleted",
        "secondary_metrics", "holdout", "exposure_criteria", "metrics", "metrics_secondary", "stats_config",
        "scheduling_config", "conclusion", "conclusion_comment", "primary_metrics_ordered_uuids",
        "secondary_metrics_ordered_uuids", "saved_metrics_ids", "only_count_matured_users",
    }
)  # fmt: skip
LEGACY_UPDATE_KEYS = frozenset({"name", "description", "end_date", "deleted"})


def _param_error(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, attr="parameters")


def normalize_parameters_input(parameters: Any) -> Any:
    """Request-side rewrite: `Control`/`CONTROL` -> `control` (only without an exact `control`), and
    `split_percent` wins over and is renamed to `rollout_percentage`. Returns a new value."""
    if not isinstance(parameters, Mapping) or not isinstance(parameters.get("feature_flag_variants"), list):
        return deepcopy(parameters)
    data = deepcopy(dict(parameters))
    variants = [v for v in data["feature_flag_variants"] if isinstance(v, dict)]
    if "control" not in {v.get("key") for v in variants}:
        for variant in variants:
            key = variant.get("key")
            if isinstance(key, str) and key.lower() == "control":
                variant["key"] = "control"
                break  # never collapse two spellings into a duplicate key
    for variant in variants:
        if "split_percent" in variant:
            variant["rollout_percentage"] = variant.pop("split_percent")
    return data


def parameters_output(parameters: Any) -> Any:
    """Response-side rewrite: every variant with `rollout_percentage` also gets `split_percent`."""
    data = deepcopy(parameters)
    if isinstance(data, dict) and isinstance(data.get("feature_flag_variants"), list):
        for variant in data["feature_flag_variants"]:
            if isinstance(variant, dict) and "rollout_percentage" in variant:
                variant["split_percent"] = variant["rollout_percentage"]
    return data


def _variant_list(parameters: Mapping[str, Any]) -> list[Any]:
    variants = parameters.get("feature_flag_variants", [])
    if variants is None:
        return []
    if isinstance(variants, list):
        return variants
    # Upstream enumerates whatever it got; a string or object yields non-object items.
    return list(variants) if isinstance(variants, str | Mapping) else [variants]


def _check_variant_entries(variants: list[Any]) -> None:
    for index, variant in enumerate(variants):
        if not isinstance(variant, Mapping):
            raise _param_error(f"Feature flag variant at index {index} must be an object")
        if "key" not in variant:
            raise _param_error(f"Feature flag variant at index {index} must have a 'key' field")
    for variant in variants:
        if "split_percent" not in variant and "rollout_percentage" not in variant:
            raise _param_error(
                "Each variant must include split_percent (recommended) or rollout_percentage (deprecated)."
            )
    if len(variants) >= MAX_VARIANTS:
        raise _param_error("Feature flag variants must be less than 21")
    if len(variants) == 1:
        raise _param_error(MSG_MIN_VARIANTS)
    keys = [variant["key"] for variant in variants]
    if variants and "control" not in keys:
        raise _param_error(
            "Feature flag variants must contain a variant with key 'control' "
            f"(lowercase, exactly). Got keys: {keys}. Rename the baseline variant's 'key' to 'control'."
        )


def _check_excluded_variants(parameters: Mapping[str, Any], variants: list[Any]) -> None:
    excluded = parameters.get("excluded_variants")
    if excluded is None:
        return
    if not isinstance(excluded, list) or not all(isinstance(v, str) for v in excluded):
        raise _param_error("excluded_variants must be a list of strings")
    if not excluded:
        return
    if not variants:
        # parameters are replaced wholesale on update, so variants must travel with the exclusions
        raise _param_error(
            "excluded_variants requires feature_flag_variants in the same request — parameters are "
            "replaced as a whole on update, so send the full parameters object"
        )
    variant_keys = {variant["key"] for variant in variants}
    baseline = (parameters.get("stats_config") or {}).get("baseline_variant_key", "control")
    holdouts = {key for key in excluded if key.startswith("holdout-")}
    if holdouts:
        raise _param_error(f"cannot exclude holdout pseudo-variants: {sorted(holdouts)}")
    if baseline in excluded:
        raise _param_error(f"baseline variant cannot be excluded ('{baseline}')")
    unknown = set(excluded) - variant_keys
    if unknown:
        raise _param_error(f"unknown variants for this experiment: {sorted(unknown)}")
    if not variant_keys - set(excluded) - {baseline}:
        raise _param_error("at least one test variant must remain in analysis")


def validate_parameters(parameters: Any) -> None:
    """`validate_experiment_parameters` (reference §4.3 step 2); run on normalized input.

    Percentages are deliberately not summed here: the flag serializer does that.
    """
    if not parameters:
        return
    if not isinstance(parameters, Mapping):
        raise _param_error("parameters must be an object")  # upstream would fail with a 500
    variants = _variant_list(parameters)
    _check_variant_entries(variants)
    _check_excluded_variants(parameters, variants)


def apply_exposure_criteria_defaults(exposure_criteria: Mapping[str, Any] | None) -> dict[str, Any]:
    """Create default: only `filterTestAccounts` (true) is filled in."""
    result = deepcopy(dict(exposure_criteria or {}))
    if result.get("filterTestAccounts") is None:
        result["filterTestAccounts"] = True
    return result


def validate_stats_config(stats_config: Mapping[str, Any] | None, variant_keys: Iterable[str] | None) -> None:
    """Method and baseline checks (attr null); without variant keys the baseline is not checked.
    Then Flagship's own settings (sequential, CUPED, correction; attr `stats_config`)."""
    if not stats_config:
        return
    method = stats_config.get("method")
    if method is not None and method not in VALID_STATS_METHODS:
        raise ValidationFailed(
            f"Invalid stats method: '{method}'. Must be one of: {', '.join(sorted(VALID_STATS_METHODS))}"
        )
    keys = list(variant_keys or [])
    baseline = stats_config.get("baseline_variant_key")
    if baseline is not None and keys and baseline not in keys:
        raise ValidationFailed(
            f"Invalid baseline_variant_key: '{baseline}'. Must be one of: {', '.join(sorted(keys))}"
        )
    check_stats_options(stats_config)


def apply_stats_config_defaults(
    stats_config: Mapping[str, Any] | None,
    *,
    default_method: str | None = None,
    default_confidence_level: float | None = None,
) -> dict[str, Any]:
    """Create defaults from the team's TeamExperimentsConfig (reference §1.6)."""
    result = deepcopy(dict(stats_config or {}))
    if not result.get("method"):
        result["method"] = default_method or "bayesian"
    if default_confidence_level is not None:
        level = float(default_confidence_level)
        bayesian = result.get("bayesian") or {}
        frequentist = result.get("frequentist") or {}
        if bayesian.get("ci_level") is None:
            result["bayesian"] = {**bayesian, "ci_level": level}
        if frequentist.get("alpha") is None:
            result["frequentist"] = {**frequentist, "alpha": 1 - level}
    return result


def variant_keys_of(variants: Iterable[Any] | None) -> list[str]:
    """Keys of a `feature_flag_variants` list, skipping malformed entries."""
    return [v["key"] for v in variants or [] if isinstance(v, Mapping) and "key" in v]


def resolved_variant_keys(
    update_parameters: Mapping[str, Any] | None,
    current_parameters: Mapping[str, Any] | None,
    flag_filters: Mapping[str, Any] | None,
) -> list[str]:
    """Variant keys after an update: sent variants, else stored parameters, else the flag's."""
    variants = (update_parameters or {}).get("feature_flag_variants")
    if variants is None:
        variants = (current_parameters or {}).get("feature_flag_variants") or flag_variants(flag_filters)
    return variant_keys_of(variants)


def validate_flag_for_experiment(filters: Mapping[str, Any] | None) -> None:
    """An existing flag must have >= 2 variants including `control` (attr null)."""
    variants = flag_variants(filters)
    if len(variants) < 2:
        raise ValidationFailed(MSG_MIN_VARIANTS)
    if "control" not in flag_variant_keys(filters):
        raise ValidationFailed(MSG_FLAG_NO_CONTROL)


def ensure_flag_launchable(flag_deleted: bool, filters: Mapping[str, Any] | None) -> None:
    """Launch guards shared by the launch action and a draft PATCH with `start_date`."""
    if flag_deleted:
        raise ValidationFailed(MSG_FLAG_DELETED_LAUNCH)
    validate_flag_for_experiment(filters)


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None  # the serializer's DateTimeField reports malformed input
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # naive input is UTC


def validate_date_range(start_date: object, end_date: object) -> None:
    """Both dates given and start >= end -> `End date must be after start date` (attr null)."""
    start, end = _as_datetime(start_date), _as_datetime(end_date)
    if start and end and start >= end:
        raise ValidationFailed(MSG_DATE_ORDER)


def writable_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """Emulate DRF: keep writable serializer fields under their validated-data names, drop the rest."""
    return {_WRITABLE_FIELDS[key]: value for key, value in body.items() if key in _WRITABLE_FIELDS}


def validate_create_keys(keys: Iterable[str]) -> None:
    """`ExperimentSerializer.create`: validated-data keys outside the expected set (attr null)."""
    unexpected = set(keys) - CREATE_KEYS - {"update_feature_flag_params"}  # popped before the check
    if unexpected:
        raise ValidationFailed(f"Can't create keys: {', '.join(sorted(unexpected))} on Experiment")


def web_variants(variants: Iterable[Any]) -> dict[Any, Any]:
    """`type=web` experiments store `{variant_key: {"rollout_percentage": n}}`."""
    return {
        v.get("key"): {"rollout_percentage": v.get("rollout_percentage")}
        for v in variants
        if isinstance(v, Mapping)
    }


@dataclass(frozen=True)
class ExperimentSnapshot:
    """What the update rules need to know about the stored experiment and its flag.

    `status` is the stored one: a paused experiment is `running` here.
    """

    status: Literal["draft", "running", "stopped"]
    feature_flag_key: str
    flag_variants: Sequence[Mapping[str, Any]] = ()
    flag_deleted: bool = False
    holdout_id: int | None = None
    has_legacy_metrics: bool = False
    deleted: bool = False
    start_date: datetime | str | None = None


def _check_restore(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    if snap.deleted and data.get("deleted") is False and snap.flag_deleted:
        raise ValidationFailed(MSG_RESTORE_DELETED_FLAG)


def _check_launch(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    if snap.status == "draft" and data.get("start_date") is not None:
        ensure_flag_launchable(snap.flag_deleted, {"multivariate": {"variants": list(snap.flag_variants)}})


def _check_legacy(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    disallowed = set(data) - {"get_feature_flag_key"} - LEGACY_UPDATE_KEYS
    if disallowed:
        raise ValidationFailed(
            "This experiment uses legacy metric formats and can only have its name, description, or end_date "
            f"updated. Cannot update: {', '.join(sorted(disallowed))}"
        )
    if "end_date" in data:
        validate_date_range(snap.start_date, data["end_date"])


def _check_keys(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    extra = set(data) - UPDATE_KEYS
    if data.get("get_feature_flag_key") == snap.feature_flag_key:
        extra.discard("get_feature_flag_key")  # echoing the current key is harmless
    if extra:
        raise ValidationFailed(f"Can't update keys: {', '.join(sorted(extra))} on Experiment")


def _check_running_changes(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    if snap.status == "draft":
        return
    parameters = data.get("parameters") or {}
    if isinstance(parameters, Mapping) and "feature_flag_variants" in parameters:
        sent = parameters["feature_flag_variants"]
        sent = sent if isinstance(sent, list) else []  # null counts as "no variants": a mismatch
        flag_keys = [v.get("key") for v in snap.flag_variants]
        if len(sent) != len(flag_keys) or any(flag_keys.count(_key(v)) != 1 for v in sent):
            raise ValidationFailed(MSG_RUNNING_VARIANTS)
    if "holdout" in data and data["holdout"] != snap.holdout_id:
        raise ValidationFailed(MSG_RUNNING_HOLDOUT)


def _key(variant: object) -> object:
    return variant.get("key") if isinstance(variant, Mapping) else None


def _check_filter_properties(snap: ExperimentSnapshot, data: dict[str, Any]) -> None:
    filters = data.get("filters") or {}
    if isinstance(filters, Mapping) and filters.get("properties"):
        raise ValidationFailed(MSG_GLOBAL_PROPERTIES)


def validate_update_payload(snapshot: ExperimentSnapshot, payload: Mapping[str, Any]) -> dict[str, Any]:
    """`_validate_update_payload` (reference §4.4 step 2), before any write; first failure wins.

    `payload` is the request body (`feature_flag_key`, `holdout_id`, ...) whose fields already passed
    the field validators (`validate_parameters`, `validate_metrics`, ...). Returns the validated-data
    dict the service continues with: `get_feature_flag_key`, `update_feature_flag_params` and
    `allow_unknown_events` removed (read those from the body), parameters normalized.
    """
    data = writable_fields(payload)
    for internal in ("update_feature_flag_params", "allow_unknown_events"):
        data.pop(internal, None)  # consumed before validation upstream
    if "parameters" in data:
        data["parameters"] = normalize_parameters_input(data["parameters"])
    _check_restore(snapshot, data)
    _check_launch(snapshot, data)
    if snapshot.has_legacy_metrics:
        _check_legacy(snapshot, data)
    else:
        for check in (_check_keys, _check_running_changes, _check_filter_properties):
            check(snapshot, data)
    data.pop("get_feature_flag_key", None)
    return data
