"""What the OpenAPI document at /api/schema/ says each operation accepts, where the code cannot say it.

Most write routes read their body raw (api/routes/common.py `RawBody`): field errors must come out in
DRF's order and words, which a pydantic model in the signature would not give. FastAPI then documents
those bodies as "anything", and a client (or schemathesis, tests/api/test_schemathesis.py) learns
nothing from the document. The schemas below say what the validation in the code accepts: required
fields, types, choices, bounds. They describe, they do not validate: the code stays the judge.

Also documented here: the query parameters routes read from the request directly, and the absence of
hard delete (`DELETE` answers 405 on experiments and flags, as PostHog's ForbidDestroyModel): those
operations are left out of the document rather than listed as something one can call.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

from fastapi import FastAPI

from domain.approvals import ACTION_KEYS
from domain.prompt_experiments import MAX_VERSIONS, MIN_VERSIONS, TEMPLATE_NAMES
from domain.scheduling import CONCLUSIONS

Schema = dict[str, Any]

_NULLABLE_STRING: Schema = {"type": ["string", "null"]}
_NAME: Schema = {"type": "string", "pattern": "\\S", "maxLength": 400}
_FLAG_KEY: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "minLength": 1, "maxLength": 400}
_CONCLUSION: Schema = {"enum": [*CONCLUSIONS, None]}
_METRIC: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "metric_type"],
    "description": "PostHog's ExperimentMetric: `mean` (`source`), `funnel` (`series`), `ratio` "
    "(`numerator`, `denominator`) or `retention` (`start_event`, `completion_event`); each node an "
    '`{"kind": "EventsNode", "event": …}` or `{"kind": "ActionsNode", "id": …}`',
    "properties": {
        "kind": {"const": "ExperimentMetric"},
        "metric_type": {"enum": ["mean", "funnel", "ratio", "retention"]},
        "uuid": {"type": "string"},
        "name": {"type": "string"},
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["kind", "event"],
            "properties": {"kind": {"const": "EventsNode"}, "event": {"type": "string", "minLength": 1}},
        },
        "series": {"type": "array", "items": {"type": "object"}},
    },
}
_PROPERTIES: Schema = {"type": "array", "items": {"type": "object"}, "maxItems": 5}
_GROUP: Schema = {
    "type": "object",
    "properties": {
        "properties": _PROPERTIES,
        "rollout_percentage": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
    },
}
_VARIANT: Schema = {
    "type": "object",
    "required": ["key"],
    "properties": {
        "key": _FLAG_KEY,
        "name": {"type": "string"},
        "rollout_percentage": {"type": "number", "minimum": 0, "maximum": 100},
    },
}

_EXPERIMENT_FIELDS: Schema = {
    "name": _NAME,
    "feature_flag_key": _FLAG_KEY,
    "description": _NULLABLE_STRING,
    "type": {"enum": ["product", "web"]},
    "parameters": {
        "type": ["object", "null"],
        "description": "`feature_flag_variants`: the variants (keys unique, one `control`, percentages "
        "summing to 100); `minimum_detectable_effect`, `recommended_sample_size`, …",
        "properties": {"feature_flag_variants": {"type": "array", "items": _VARIANT, "minItems": 2}},
    },
    "metrics": {"type": "array", "items": _METRIC},
    "metrics_secondary": {"type": "array", "items": _METRIC},
    "saved_metrics_ids": {
        "type": ["array", "null"],
        "items": {
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer"}, "metadata": {"type": "object", "required": ["type"]}},
        },
    },
    "holdout_id": {"type": ["integer", "null"]},
    "exposure_criteria": {
        "type": ["object", "null"],
        "properties": {"filterTestAccounts": {"type": "boolean"}, "exposure_config": {"type": "object"}},
    },
    "stats_config": {"type": ["object", "null"]},
    "scheduling_config": {
        "type": ["object", "null"],
        "description": "`launch_at`, `end_at` (timezone-aware ISO 8601), `duration_days`, "
        "`ship_variant_key`, `end_conclusion`, `end_conclusion_comment`",
    },
    "start_date": {"type": ["string", "null"], "format": "date-time"},
    "end_date": {"type": ["string", "null"], "format": "date-time"},
    "archived": {"type": "boolean"},
    "deleted": {"type": "boolean", "description": "true: soft delete; false: restore"},
    "conclusion": _CONCLUSION,
    "conclusion_comment": _NULLABLE_STRING,
    "only_count_matured_users": {"type": "boolean"},
    "allow_unknown_events": {
        "type": "boolean",
        "description": "Write-only. Without it, metrics may only name events the project has seen.",
    },
    "update_feature_flag_params": {"type": "boolean", "description": "Write-only."},
}


def _object(properties: Schema, *required: str) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required)}


_END: Schema = _object({"conclusion": _CONCLUSION, "conclusion_comment": _NULLABLE_STRING})
_HOLDOUT_GROUP: Schema = {
    "type": "object",
    "required": ["rollout_percentage"],
    "properties": {
        "properties": {"type": "array", "maxItems": 0},
        "rollout_percentage": {"type": "number", "minimum": 0, "maximum": 100},
    },
}
_HOLDOUT_FIELDS: Schema = {
    "name": _NAME,
    "description": {"type": ["string", "null"], "maxLength": 400},
    "filters": {
        "type": "array",
        "items": _HOLDOUT_GROUP,
        "minItems": 1,
        "description": "Groups; the first one's `rollout_percentage` is the share held out.",
    },
}
_SAVED_METRIC_FIELDS: Schema = {
    "name": _NAME,
    "description": _NULLABLE_STRING,
    "query": _METRIC,
    "tags": {"type": "array", "items": {"type": "string", "pattern": "\\S", "maxLength": 255}},
}
_FLAG_FIELDS: Schema = {
    "key": _FLAG_KEY,
    "name": {"type": "string", "maxLength": 2000},
    "filters": {
        "type": "object",
        "properties": {
            "groups": {"type": "array", "items": _GROUP},
            "multivariate": {
                "type": ["object", "null"],
                "properties": {"variants": {"type": "array", "items": _VARIANT}},
                "description": "Variant rollout percentages sum to 100",
            },
            "payloads": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "active": {"type": "boolean"},
    "ensure_experience_continuity": {"type": "boolean"},
    "evaluation_runtime": {"enum": ["server", "client", "all"]},
    "evaluation_tags": {"type": "array", "items": {"type": "string"}},
}
_PROMPT: Schema = {
    "type": ["string", "object", "array", "number", "boolean"],
    "description": "Text or any JSON value (not null), up to 1 MB",
}
_PROMPT_NAME: Schema = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$", "minLength": 1, "maxLength": 255}
_APPROVER_CONFIG: Schema = _object(
    {
        "quorum": {"type": "integer", "minimum": 1},
        "users": {
            "type": "array",
            "items": {"type": "integer"},
            "description": "Members of the organization",
        },
    }
)
_POLICY_FIELDS: Schema = {
    "action_key": {"enum": list(ACTION_KEYS)},
    "approver_config": _APPROVER_CONFIG,
    "allow_self_approve": {"type": "boolean"},
    "enabled": {"type": "boolean"},
    "expiry_seconds": {"type": "integer", "minimum": 1},
}
_QUERY_NODE: Schema = {
    "oneOf": [
        _object(
            {
                "kind": {"const": "ExperimentQuery"},
                "experiment_id": {"type": "integer"},
                "metric": _METRIC,
            },
            "kind",
            "experiment_id",
            "metric",
        ),
        _object(
            {
                "kind": {"const": "ExperimentExposureQuery"},
                "experiment_id": {"type": "integer"},
                "feature_flag": {"type": "object"},
                "start_date": {"type": ["string", "null"]},
                "end_date": {"type": ["string", "null"]},
            },
            "kind",
            "experiment_id",
        ),
    ]
}

_PROJECT = "/api/projects/{project_id}"
_EXPERIMENT = f"{_PROJECT}/experiments/{{experiment_id}}"

# (method, path) -> the request body's schema and whether one is required.
BODIES: dict[tuple[str, str], tuple[Schema, bool]] = {
    ("post", f"{_PROJECT}/experiments/"): (_object(_EXPERIMENT_FIELDS, "name", "feature_flag_key"), True),
    ("patch", f"{_EXPERIMENT}/"): (_object(_EXPERIMENT_FIELDS), False),
    ("put", f"{_EXPERIMENT}/"): (
        {
            **_object(_EXPERIMENT_FIELDS, "name", "feature_flag_key"),
            "description": "A full update: `feature_flag_key` may only be the experiment's current key.",
        },
        True,
    ),
    ("post", f"{_EXPERIMENT}/end/"): (_END, False),
    ("post", f"{_EXPERIMENT}/ship_variant/"): (
        _object(
            {"variant_key": _FLAG_KEY, "conclusion": _CONCLUSION, "conclusion_comment": _NULLABLE_STRING},
            "variant_key",
        ),
        True,
    ),
    **{
        ("post", f"{_EXPERIMENT}/{action}/"): (_object({}), False) for action in ("launch", "pause", "resume")
    },
    **{
        ("post", f"{_EXPERIMENT}/{action}/"): (_object({}), False)
        for action in ("reset", "archive", "unarchive")
    },
    ("post", f"{_EXPERIMENT}/duplicate/"): (
        _object({"feature_flag_key": _FLAG_KEY, "name": _NAME}),
        False,
    ),
    ("post", f"{_EXPERIMENT}/copy_to_project/"): (
        _object(
            {
                "target_team_id": {"type": "integer", "description": "A project of the same organization"},
                "feature_flag_key": _FLAG_KEY,
                "name": _NAME,
            },
            "target_team_id",
        ),
        True,
    ),
    ("post", f"{_EXPERIMENT}/recalculate_timeseries/"): (
        _object(
            {
                "metric": {**_METRIC, "description": "One of the experiment's metrics, with its `uuid`"},
                "fingerprint": {"type": "string", "minLength": 1},
            },
            "metric",
            "fingerprint",
        ),
        True,
    ),
    ("post", f"{_PROJECT}/experiments/create_from_prompt/"): (
        _object(
            {
                "prompt_name": _PROMPT_NAME,
                "versions": {
                    "type": "array",
                    "items": {"type": "integer", "minimum": 1},
                    "minItems": MIN_VERSIONS,
                    "maxItems": MAX_VERSIONS,
                    "uniqueItems": True,
                    "description": "Published versions of the prompt",
                },
                "templates": {
                    "type": "array",
                    "items": {"enum": list(TEMPLATE_NAMES)},
                    "minItems": 1,
                    "uniqueItems": True,
                },
                "name": {"type": "string"},
                "feature_flag_key": _FLAG_KEY,
                "description": {"type": "string"},
            },
            "prompt_name",
            "versions",
            "templates",
        ),
        True,
    ),
    ("post", f"{_PROJECT}/feature_flags/"): (_object(_FLAG_FIELDS, "key"), True),
    ("post", f"{_PROJECT}/experiment_holdouts/"): (_object(_HOLDOUT_FIELDS, "name", "filters"), True),
    ("patch", f"{_PROJECT}/experiment_holdouts/{{holdout_id}}/"): (_object(_HOLDOUT_FIELDS), True),
    ("put", f"{_PROJECT}/experiment_holdouts/{{holdout_id}}/"): (
        _object(_HOLDOUT_FIELDS, "name", "filters"),
        True,
    ),
    ("post", f"{_PROJECT}/experiment_saved_metrics/"): (_object(_SAVED_METRIC_FIELDS, "name", "query"), True),
    ("patch", f"{_PROJECT}/experiment_saved_metrics/{{metric_id}}/"): (_object(_SAVED_METRIC_FIELDS), True),
    ("put", f"{_PROJECT}/experiment_saved_metrics/{{metric_id}}/"): (
        _object(_SAVED_METRIC_FIELDS, "name", "query"),
        True,
    ),
    ("post", f"{_PROJECT}/approval_policies/"): (_object(_POLICY_FIELDS, "action_key"), True),
    ("patch", f"{_PROJECT}/approval_policies/{{policy_id}}/"): (_object(_POLICY_FIELDS), True),
    ("post", f"{_PROJECT}/change_requests/{{cr_id}}/approve/"): (
        _object({"comment": _NULLABLE_STRING}),
        False,
    ),
    ("post", f"{_PROJECT}/llm_prompts/"): (
        _object(
            {"name": _PROMPT_NAME, "prompt": _PROMPT},
            "name",
            "prompt",
        ),
        True,
    ),
    ("patch", f"{_PROJECT}/llm_prompts/name/{{name}}/"): (
        _object(
            {
                "prompt": _PROMPT,
                "base_version": {"type": "integer", "minimum": 1, "description": "The latest version"},
            },
            "prompt",
            "base_version",
        ),
        True,
    ),
    ("post", f"{_PROJECT}/query/"): (_object({"query": _QUERY_NODE}, "query"), True),
}

# (method, path) -> query parameters the route reads from the request itself.
QUERY_PARAMETERS: dict[tuple[str, str], list[Schema]] = {
    ("get", f"{_EXPERIMENT}/timeseries_results/"): [
        {
            "name": "metric_uuid",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
        {
            "name": "fingerprint",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1},
        },
    ],
}

# Hard delete is refused (405) by design; the document lists only what can be done.
NOT_OFFERED = {("delete", f"{_EXPERIMENT}/"), ("delete", f"{_PROJECT}/feature_flags/{{flag_id}}/")}


def _json_body(schema: Schema, required: bool) -> Schema:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def document(openapi: Schema) -> Schema:
    """The document FastAPI generated, with the bodies, parameters and omissions above applied."""
    paths: Schema = openapi.get("paths", {})
    for (method, path), (schema, required) in BODIES.items():
        operation = paths.get(path, {}).get(method)
        if operation is not None:
            operation["requestBody"] = _json_body(deepcopy(schema), required)
    for (method, path), parameters in QUERY_PARAMETERS.items():
        operation = paths.get(path, {}).get(method)
        if operation is not None:
            operation.setdefault("parameters", []).extend(deepcopy(parameters))
    for method, path in NOT_OFFERED:
        paths.get(path, {}).pop(method, None)
    return openapi


def install(app: FastAPI) -> None:
    """`app.openapi()` builds the document once, then serves it (FastAPI caches `openapi_schema`)."""
    generate: Callable[[], Schema] = app.openapi

    def openapi() -> Schema:
        if app.openapi_schema is None:
            app.openapi_schema = document(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
