"""Feature-flag rules for experiments, as PostHog's FeatureFlagSerializer and ExperimentService apply them.

Everything here is pure: plain JSON-like values in, new values out (inputs are never mutated), or a
`ValidationFailed` carrying PostHog's exact wording. Errors raised by the flag serializer carry the
flag's own field (`key`, `filters`) as `attr`, because upstream nests that serializer (reference §2).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

from domain.drf_fields import boolean
from domain.errors import ValidationFailed
from domain.linear_regex import check_filter_regexes

DEFAULT_ROLLOUT_PERCENTAGE = 100
FLAG_KEY_MAX_LENGTH = 400  # FeatureFlag.key max_length
FLAG_KEY_RE = re.compile(r"^[a-zA-Z0-9_-]+$")

_DEFAULT_VARIANTS: tuple[dict[str, Any], ...] = (
    {"key": "control", "name": "Control Group", "rollout_percentage": 50},
    {"key": "test", "name": "Test Variant", "rollout_percentage": 50},
)

SHIP_VARIANT_GROUP_DESCRIPTION = "Added automatically when the experiment was ended to keep only one variant."

MSG_KEY_TAKEN = "There is already a feature flag with this key."
MSG_KEY_CHARS = "Only letters, numbers, hyphens (-) & underscores (_) are allowed."
MSG_VARIANT_SUM = "Invalid variant definitions: Variant rollout percentages must sum to 100."
MSG_VARIANT_OVERRIDE = "Filters are not valid (variant override does not exist)"
# Group rollout bounds: upstream's structural tier (FlagConditionGroupSerializer, a DRF FloatField
# with min_value=0/max_value=100) words these with DRF's stock messages.
MSG_ROLLOUT_NOT_NUMBER = "A valid number is required."
MSG_ROLLOUT_TOO_LOW = "Ensure this value is greater than or equal to 0."
MSG_ROLLOUT_TOO_HIGH = "Ensure this value is less than or equal to 100."
MSG_PAYLOADS_NOT_DICT = "Payloads must be passed as a dictionary"
MSG_PAYLOAD_NOT_JSON = "Payload value is not valid JSON"
MSG_PAYLOAD_KEYS_MULTIVARIATE = "Payload keys must match a variant key for multivariate flags"
MSG_PAYLOAD_KEYS_BOOLEAN = "Payload keys must be 'true' for boolean flags"


def default_experiment_variants() -> list[dict[str, Any]]:
    """The 50/50 control/test split used when an experiment sends no variants (a fresh copy)."""
    return [dict(variant) for variant in _DEFAULT_VARIANTS]


def _key_error(detail: str, code: str) -> ValidationFailed:
    return ValidationFailed(detail, attr="key", code=code)


def validate_flag_key(key: object, *, key_exists: Callable[[str], bool] | None = None) -> str:
    """Validate a flag key the way DRF's CharField and `validate_key` do; returns the stored form.

    Order matters and mirrors DRF: null, type, trim + blank, max length, then uniqueness (the
    injected `key_exists` lookup, so this stays pure), then the character class.
    """
    if key is None:
        raise _key_error("This field may not be null.", "null")
    if isinstance(key, bool) or not isinstance(key, str | int | float):
        raise _key_error("Not a valid string.", "invalid_input")
    value = str(key).strip()  # CharField trims whitespace before the blank check
    if value == "":
        raise _key_error("This field may not be blank.", "blank")
    if len(value) > FLAG_KEY_MAX_LENGTH:
        raise _key_error(
            f"Ensure this field has no more than {FLAG_KEY_MAX_LENGTH} characters.", "max_length"
        )
    if key_exists is not None and key_exists(value):
        raise _key_error(MSG_KEY_TAKEN, "unique")
    if not FLAG_KEY_RE.match(value):
        raise _key_error(MSG_KEY_CHARS, "invalid_key")
    return value


def _filters_error(detail: str, code: str = "invalid_input") -> ValidationFailed:
    return ValidationFailed(detail, attr="filters", code=code)


def flag_variants(filters: Mapping[str, Any] | None) -> list[Any]:
    """`filters.multivariate.variants`, tolerating a missing or null `multivariate`."""
    multivariate = (filters or {}).get("multivariate") or {}
    variants = multivariate.get("variants") if isinstance(multivariate, Mapping) else None
    return list(variants) if isinstance(variants, list) else []


def flag_variant_keys(filters: Mapping[str, Any] | None) -> list[str]:
    """Variant keys in flag order, skipping malformed entries."""
    return [v["key"] for v in flag_variants(filters) if isinstance(v, Mapping) and "key" in v]


def _variant_sum_is_100(variants: list[Any]) -> bool:
    total: float = 0
    for variant in variants:
        value = variant.get("rollout_percentage", 0) if isinstance(variant, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False  # upstream would crash summing it; reject with the same message instead
        total += value
    return total == 100


def _check_holdout(holdout: Any) -> None:
    if holdout is None:
        return
    value = holdout.get("exclusion_percentage") if isinstance(holdout, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise _filters_error("Holdout exclusion_percentage must be a number between 0 and 100.")


def _check_group_rollout(group: Mapping[str, Any]) -> None:
    value = group.get("rollout_percentage")
    if value is None:
        return  # null means "everyone in the group"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _filters_error(MSG_ROLLOUT_NOT_NUMBER)  # DRF's `invalid`, renamed as PostHog does
    if value < 0:
        raise _filters_error(MSG_ROLLOUT_TOO_LOW, "min_value")
    if value > 100:
        raise _filters_error(MSG_ROLLOUT_TOO_HIGH, "max_value")


def _check_payloads(filters: Mapping[str, Any], variant_keys: set[str]) -> None:
    payloads = filters.get("payloads", {})
    if payloads is None:
        payloads = {}
    if not isinstance(payloads, Mapping):
        raise _filters_error(MSG_PAYLOADS_NOT_DICT)
    for value in payloads.values():
        if isinstance(value, str):
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                raise _filters_error(MSG_PAYLOAD_NOT_JSON) from exc
    if filters.get("multivariate"):
        if not all(key in variant_keys for key in payloads):
            raise _filters_error(MSG_PAYLOAD_KEYS_MULTIVARIATE)
    elif len(payloads) > 1 or any(key != "true" for key in payloads):
        raise _filters_error(MSG_PAYLOAD_KEYS_BOOLEAN)


def validate_flag_filters(filters: Mapping[str, Any]) -> None:
    """The pure part of FeatureFlagSerializer.validate_filters, in upstream's order.

    Property-level checks that need the database (cohorts, flag dependencies) belong to the caller.
    """
    variants = flag_variants(filters)
    if any(not isinstance(v, Mapping) or not isinstance(v.get("key"), str) for v in variants):
        # The evaluation engine buckets by key: a variant without one could never be served.
        raise _filters_error("Invalid variant definitions: every variant needs a string 'key'.")
    if variants and not _variant_sum_is_100(variants):
        raise _filters_error(MSG_VARIANT_SUM)
    _check_holdout(filters.get("holdout"))
    variant_keys = set(flag_variant_keys(filters))
    groups = filters.get("groups") or []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, Mapping):
            continue
        _check_group_rollout(group)
        if group.get("variant") and group["variant"] not in variant_keys:
            raise _filters_error(MSG_VARIANT_OVERRIDE)
    _check_payloads(filters, variant_keys)
    check_filter_regexes(filters, "filters")


def holdout_filters_for_flag(holdout_id: int | None, holdout_filters: list[Any] | None) -> dict[str, Any]:
    """The `holdout` entry of a flag's filters; the exclusion is the holdout's first group's rollout."""
    if not holdout_id or not holdout_filters:
        return {"holdout": None}
    first = holdout_filters[0] if isinstance(holdout_filters[0], Mapping) else {}
    return {"holdout": {"id": holdout_id, "exclusion_percentage": first.get("rollout_percentage")}}


def _holdout_entry(holdout: Mapping[str, Any] | None) -> dict[str, Any]:
    if not holdout:
        return {"holdout": None}
    return holdout_filters_for_flag(holdout.get("id"), holdout.get("filters"))


def build_experiment_flag_filters(
    parameters: Mapping[str, Any] | None, holdout: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Filters for a flag created by an experiment (reference §4.3, `_ensure_feature_flag`).

    `holdout` is `{"id": ..., "filters": [...]}` or None. Upstream reads the rollout with
    `.get("rollout_percentage", 100)`, so an explicit 0 is kept (only a missing key defaults).
    """
    params = parameters or {}
    variants = params.get("feature_flag_variants") or default_experiment_variants()
    filters: dict[str, Any] = {
        "groups": [
            {
                "properties": [],
                "rollout_percentage": params.get("rollout_percentage", DEFAULT_ROLLOUT_PERCENTAGE),
            }
        ],
        "multivariate": {"variants": deepcopy(variants)},
        "aggregation_group_type_index": params.get("aggregation_group_type_index"),
        **_holdout_entry(holdout),
    }
    if params.get("feature_flag_payloads"):
        filters["payloads"] = deepcopy(params["feature_flag_payloads"])
    return filters


def build_experiment_flag(
    feature_flag_key: str,
    experiment_name: str,
    parameters: Mapping[str, Any] | None,
    holdout: Mapping[str, Any] | None,
    *,
    active: bool,
    persistence_default: bool = False,
) -> dict[str, Any]:
    """The FeatureFlagSerializer payload for a new experiment flag (key, name, filters, flags)."""
    params = parameters or {}
    continuity = params.get("ensure_experience_continuity")
    if continuity is not None:
        continuity = boolean(continuity, "ensure_experience_continuity")  # the flag's BooleanField
    return {
        "key": feature_flag_key,
        "name": f"Feature Flag for Experiment {experiment_name}",
        "filters": build_experiment_flag_filters(parameters, holdout),
        "active": active,
        "ensure_experience_continuity": continuity if continuity is not None else bool(persistence_default),
        "creation_context": "experiments",
    }


def sync_flag_filters_from_parameters(
    old_filters: Mapping[str, Any], parameters: Mapping[str, Any], holdout: Mapping[str, Any] | None
) -> dict[str, Any]:
    """New flag filters when a PATCH carries truthy `parameters` (reference §4.4 step 4).

    Missing variants reset the flag to the 50/50 default and a missing aggregation index clears it,
    exactly like upstream; only the first release group's rollout is replaced.
    """
    existing_groups = list(old_filters.get("groups") or [])
    rollout = parameters.get("rollout_percentage")
    if rollout is not None and existing_groups:
        groups = [{**existing_groups[0], "rollout_percentage": rollout}, *existing_groups[1:]]
    else:
        groups = existing_groups
    variants = parameters.get("feature_flag_variants") or default_experiment_variants()
    return deepcopy(
        {
            **old_filters,
            "groups": groups,
            "multivariate": {"variants": variants},
            "aggregation_group_type_index": parameters.get("aggregation_group_type_index"),
            **_holdout_entry(holdout),
        }
    )


def with_holdout_filters(old_filters: Mapping[str, Any], holdout: Mapping[str, Any] | None) -> dict[str, Any]:
    """Only `filters.holdout` rewritten: a PATCH that changes the holdout but not `parameters`."""
    return deepcopy({**old_filters, **_holdout_entry(holdout)})


def ensure_variant_on_flag(filters: Mapping[str, Any] | None, variant_key: str) -> None:
    """`ship_variant` precondition: the variant must exist on the flag (attr null)."""
    if variant_key not in flag_variant_keys(filters):
        raise ValidationFailed(f"Variant '{variant_key}' not found on feature flag.")


def ship_variant_filters(
    filters: Mapping[str, Any], variant_key: str, release_to_everyone: bool = False
) -> dict[str, Any]:
    """The complete new filters that give `variant_key` 100 % (reference §5).

    Every other key (`holdout`, `super_groups`, ...) is deliberately dropped, as in the baseline.
    """
    groups = deepcopy(list(filters.get("groups") or []))
    if release_to_everyone:
        catch_all = {
            "properties": [],
            "rollout_percentage": 100,
            "description": SHIP_VARIANT_GROUP_DESCRIPTION,
        }
        groups = [catch_all, *groups]
    variants = [
        {
            "key": v["key"],
            "rollout_percentage": 100 if v["key"] == variant_key else 0,
            **({"name": v["name"]} if v.get("name") else {}),
        }
        for v in flag_variants(filters)
        if isinstance(v, Mapping) and "key" in v
    ]
    return {
        "aggregation_group_type_index": filters.get("aggregation_group_type_index"),
        "payloads": deepcopy(filters.get("payloads") or {}),
        "multivariate": {"variants": variants},
        "groups": groups,
    }


def parameters_from_flag_filters(
    parameters: Mapping[str, Any] | None, filters: Mapping[str, Any]
) -> dict[str, Any]:
    """Flag -> experiment back-sync after a flags-API edit (reference §4.4, last bullet)."""
    updated = deepcopy(dict(parameters or {}))
    updated["feature_flag_variants"] = deepcopy(flag_variants(filters))
    aggregation = filters.get("aggregation_group_type_index")
    if aggregation is None:
        updated.pop("aggregation_group_type_index", None)
    else:
        updated["aggregation_group_type_index"] = aggregation
    return updated
