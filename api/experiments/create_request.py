"""POST /experiments/: PostHog's create validation, in its order, producing a CreateRequest.

Everything that needs the database (flag lookup, event definitions, actions) happens here; the
workflow's create activity then writes the experiment and, if needed, its new flag atomically.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.experiments.fields import check_fields, parse_datetime
from api.experiments.metrics_prep import prepare_metrics
from api.experiments.references import resolve_holdout, resolve_saved_metrics
from db import flags as flag_queries
from db.tables import FeatureFlag
from domain.autopilot.rules import validate_autopilot
from domain.experiment_messages import CreateRequest
from domain.experiment_rules import (
    apply_exposure_criteria_defaults,
    apply_stats_config_defaults,
    normalize_parameters_input,
    validate_create_keys,
    validate_date_range,
    validate_exposure_criteria,
    validate_flag_for_experiment,
    validate_parameters,
    validate_stats_config,
    variant_keys_of,
    web_variants,
    writable_fields,
)
from domain.fingerprint import with_fingerprints
from domain.flag_rules import (
    build_experiment_flag,
    flag_variant_keys,
    flag_variants,
    validate_flag_filters,
    validate_flag_key,
)
from domain.metrics import compute_ordering, orderings_with_saved_metrics, validate_ordering_coverage
from domain.metrics.validation import metric_uuids
from domain.scheduling import validate_scheduling_config


async def build_create_request(
    session: AsyncSession, team_id: int, actor_id: int | None, body: dict[str, Any], experiment_id: int
) -> tuple[CreateRequest, str]:
    check_fields(body, creating=True)
    parameters = normalize_parameters_input(body.get("parameters"))
    validate_parameters(parameters)
    validate_exposure_criteria(body.get("exposure_criteria"))
    holdout = await resolve_holdout(session, team_id, body.get("holdout_id"))
    saved_links = await resolve_saved_metrics(session, team_id, body.get("saved_metrics_ids"))
    start = parse_datetime("start_date", body.get("start_date"))
    end = parse_datetime("end_date", body.get("end_date"))
    if "start_date" in body and "end_date" in body:
        validate_date_range(start, end)
    validate_create_keys(writable_fields(body).keys())
    primary, secondary = await prepare_metrics(
        session,
        team_id,
        body.get("metrics"),
        body.get("metrics_secondary"),
        reserved_uuids=[link["query_uuid"] for link in saved_links if link.get("query_uuid")],
        allow_unknown_events=bool(body.get("allow_unknown_events")),
    )
    key: str = body["feature_flag_key"]
    existing, new_flag = await _resolve_flag(session, team_id, key, body["name"], parameters, holdout, start)
    variant_keys = flag_variant_keys(existing.filters) if existing else _new_flag_keys(new_flag)
    stats_config = body.get("stats_config")
    validate_stats_config(stats_config, variant_keys)
    row = _row(body, experiment_id, team_id, parameters, primary, secondary, saved_links, start, end, holdout)
    row["stats_config"] = apply_stats_config_defaults(stats_config)
    row["scheduling_config"] = validate_scheduling_config(
        body.get("scheduling_config"),
        variant_keys=variant_keys,
        archived=row["archived"],
        deleted=row["deleted"],
    )
    _finish_metrics(row, start)
    saved_uuids = [link["query_uuid"] for link in saved_links if link.get("query_uuid")]
    validate_autopilot(
        row["scheduling_config"],
        [*metric_uuids(row["metrics"]), *metric_uuids(row["metrics_secondary"]), *saved_uuids],
        [*(row["primary_metrics_ordered_uuids"] or []), *metric_uuids(row["metrics"])],
    )
    if row["type"] == "web":
        variants = (parameters or {}).get("feature_flag_variants") or (
            flag_variants(existing.filters) if existing else []
        )
        row["variants"] = web_variants(variants)
    return (
        CreateRequest(
            actor_id=actor_id,
            row=row,
            flag_id=existing.id if existing else None,
            new_flag=new_flag,
            saved_metric_links=saved_links,
        ),
        key,
    )


def _new_flag_keys(new_flag: dict[str, Any] | None) -> list[str]:
    return flag_variant_keys(new_flag["filters"]) if new_flag else []


async def _resolve_flag(
    session: AsyncSession,
    team_id: int,
    key: str,
    name: str,
    parameters: dict[str, Any] | None,
    holdout: dict[str, Any] | None,
    start: datetime | None,
) -> tuple[FeatureFlag | None, dict[str, Any] | None]:
    """Reuse a flag with this key (never modified), else plan a new one (`_ensure_feature_flag`)."""
    existing = await flag_queries.any_flag_by_key(session, team_id, key)
    if existing is not None:
        validate_flag_for_experiment(existing.filters)
        return existing, None
    validate_flag_key(key)
    flag = build_experiment_flag(key, name, parameters, holdout, active=start is not None)
    validate_flag_filters(flag["filters"])
    return None, flag | {"team_id": team_id}


def _row(
    body: dict[str, Any],
    experiment_id: int,
    team_id: int,
    parameters: dict[str, Any] | None,
    primary: list[Any] | None,
    secondary: list[Any] | None,
    saved_links: list[dict[str, Any]],
    start: datetime | None,
    end: datetime | None,
    holdout: dict[str, Any] | None,
) -> dict[str, Any]:
    primary_order = (
        compute_ordering(body.get("primary_metrics_ordered_uuids"), primary)
        if primary is not None
        else body.get("primary_metrics_ordered_uuids")
    )
    secondary_order = (
        compute_ordering(body.get("secondary_metrics_ordered_uuids"), secondary)
        if secondary is not None
        else body.get("secondary_metrics_ordered_uuids")
    )
    saved_refs = [(link.get("query_uuid"), link.get("metadata")) for link in saved_links]
    if saved_refs:
        primary_order, secondary_order = orderings_with_saved_metrics(
            primary_order, secondary_order, saved_refs
        )
    validate_ordering_coverage(primary_order, secondary_order, primary, secondary, saved_refs)
    return {
        "id": experiment_id,
        "team_id": team_id,
        "name": body["name"],
        "description": body.get("description") if body.get("description") is not None else "",
        "filters": body.get("filters") or {},
        "parameters": parameters,
        "secondary_metrics": body.get("secondary_metrics") or [],
        "holdout_id": holdout["id"] if holdout else None,
        "start_date": start.isoformat() if start else None,
        "end_date": end.isoformat() if end else None,
        "archived": bool(body.get("archived", False)),
        "deleted": bool(body.get("deleted", False)),
        "type": body.get("type") or "product",
        "exposure_criteria": apply_exposure_criteria_defaults(body.get("exposure_criteria")),
        "metrics": primary or [],
        "metrics_secondary": secondary or [],
        "primary_metrics_ordered_uuids": primary_order,
        "secondary_metrics_ordered_uuids": secondary_order,
        "scheduling_config": body.get("scheduling_config"),
        "only_count_matured_users": bool(body.get("only_count_matured_users", False)),
        "conclusion": body.get("conclusion"),
        "conclusion_comment": body.get("conclusion_comment"),
    }


def _finish_metrics(row: dict[str, Any], start: datetime | None) -> None:
    common = {
        "start_date": start,
        "stats_config": row["stats_config"],
        "exposure_criteria": row["exposure_criteria"],
        "only_count_matured_users": row["only_count_matured_users"],
        "parameters": row["parameters"],
    }
    row["metrics"] = with_fingerprints(row["metrics"], **common)
    row["metrics_secondary"] = with_fingerprints(row["metrics_secondary"], **common)


__all__ = ["build_create_request", "variant_keys_of"]
