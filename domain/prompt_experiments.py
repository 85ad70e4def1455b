"""Prompt experiments (`create_from_prompt`, reference §4.15): variants per prompt version, one metric
per template, and the default name and flag key. Pure; the flag-key lookup is injected."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

TEMPLATE_METADATA: dict[str, dict[str, str]] = {
    "cost": {"label": "Cost", "description": "Compares LLM cost per user across prompt versions."},
    "latency": {
        "label": "Latency",
        "description": "Compares LLM response time per user across prompt versions.",
    },
    "eval_pass_rate": {
        "label": "Eval pass rate",
        "description": "Compares the share of evaluations that pass across prompt versions.",
    },
}
TEMPLATE_NAMES = tuple(TEMPLATE_METADATA)
MIN_VERSIONS, MAX_VERSIONS = 2, 10
FLAG_KEY_SLUG_LENGTH = 200

# HogQL guards of upstream's eval-pass-rate template: explicit JSON extraction sidesteps property
# type inference, N/A evaluations are excluded and only boolean results count.
_APPLICABLE = "JSONExtractRaw(properties, '$ai_evaluation_applicable') != 'false'"
_BOOLEAN_RESULT = "JSONExtractString(properties, '$ai_evaluation_result_type') IN ('', 'boolean')"
_PASSED = "JSONExtractBool(properties, '$ai_evaluation_result')"


def list_templates() -> list[dict[str, str]]:
    return [{"key": name, **meta} for name, meta in TEMPLATE_METADATA.items()]


def _prompt_filter(prompt_name: str) -> dict[str, Any]:
    return {"key": "$ai_prompt_name", "operator": "exact", "type": "event", "value": prompt_name}


def _hogql(expression: str) -> dict[str, Any]:
    return {"key": expression, "type": "hogql"}


def _mean_metric(name: str, prompt_name: str, math_property: str) -> dict[str, Any]:
    return {
        "kind": "ExperimentMetric",
        "metric_type": "mean",
        "name": name,
        "goal": "decrease",
        "source": {
            "kind": "EventsNode",
            "event": "$ai_generation",
            "math": "sum",
            "math_property": math_property,
            "properties": [_prompt_filter(prompt_name)],
        },
    }


def _eval_pass_rate_metric(prompt_name: str) -> dict[str, Any]:
    guards = [_prompt_filter(prompt_name), _hogql(_APPLICABLE), _hogql(_BOOLEAN_RESULT)]
    return {
        "kind": "ExperimentMetric",
        "metric_type": "ratio",
        "name": "Eval pass rate",
        "numerator": {
            "kind": "EventsNode",
            "event": "$ai_evaluation",
            "properties": [guards[0], _hogql(_PASSED), *guards[1:]],
        },
        "denominator": {"kind": "EventsNode", "event": "$ai_evaluation", "properties": guards},
    }


def template_metric(template: str, prompt_name: str) -> dict[str, Any]:
    """One metric of a template, scoped to the prompt by `$ai_prompt_name`."""
    if template == "cost":
        return _mean_metric("Cost", prompt_name, "$ai_total_cost_usd")
    if template == "latency":
        return _mean_metric("Latency", prompt_name, "$ai_latency")
    if template == "eval_pass_rate":
        return _eval_pass_rate_metric(prompt_name)
    raise ValueError(f"Unknown LLM metric template: {template!r}. Known: {sorted(TEMPLATE_NAMES)}")


def prompt_variants(versions: Sequence[int]) -> list[dict[str, Any]]:
    """`control`, then `test` (two versions) or `test-1 … test-(N-1)`; equal integer splits, the
    last variant taking the remainder so the flag sums to 100."""
    count = len(versions)
    base = 100 // count
    splits = [base] * count
    splits[-1] += 100 - base * count
    variants = []
    for index, (version, split) in enumerate(zip(versions, splits, strict=True)):
        key = "control" if index == 0 else "test" if count == 2 else f"test-{index}"
        variants.append({"key": key, "name": f"v{version}", "rollout_percentage": split})
    return variants


def prompt_parameters(prompt_name: str, versions: Sequence[int], templates: Sequence[str]) -> dict[str, Any]:
    """Experiment parameters: the variants, a payload per variant naming its prompt version (the SDK
    reads it with `get_feature_flag_payload`), and the prompt metadata the list filter matches."""
    variants = prompt_variants(versions)
    payloads = {
        variant["key"]: json.dumps({"prompt_name": prompt_name, "prompt_version": version})
        for variant, version in zip(variants, versions, strict=True)
    }
    return {
        "feature_flag_variants": variants,
        "feature_flag_payloads": payloads,
        "rollout_percentage": 100,
        "prompt_metadata": {"name": prompt_name, "templates": list(templates), "versions": list(versions)},
    }


def default_experiment_name(prompt_name: str, versions: Sequence[int], templates: Sequence[str]) -> str:
    labels = ", ".join(f"v{version}" for version in versions)
    return f"{prompt_name}: {labels} ({', '.join(templates)})"


def slugify(value: str) -> str:
    """Django's `slugify` (ASCII mode), which upstream derives flag keys with."""
    ascii_value = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^\w\s-]", "", ascii_value.lower())
    return re.sub(r"[-\s]+", "-", cleaned).strip("-_")


def flag_key_base(name: str) -> str:
    return slugify(name)[:FLAG_KEY_SLUG_LENGTH] or "experiment"


def default_flag_key(name: str, key_exists: Callable[[str], bool]) -> str:
    """The slug of the name (or `experiment`), with `-2`, `-3`, … appended until unused."""
    base = flag_key_base(name)
    candidate, suffix = base, 2
    while key_exists(candidate):
        candidate = f"{base}-{suffix}"
        suffix += 1
    return candidate
