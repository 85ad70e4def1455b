"""PATCH /experiments/{id}/: PostHog's update service (reference §4.4), producing an UpdateRequest."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.experiments.fields import check_fields, parse_datetime
from api.experiments.metrics_prep import prepare_metrics
from api.experiments.references import resolve_holdout, resolve_saved_metrics
from db.experiment_assets import links_of
from db.tables import Experiment, ExperimentSavedMetric, FeatureFlag
from domain import experiment_rules as rules
from domain.autopilot.rules import check_metrics_kept, validate_autopilot
from domain.experiment_messages import UpdateRequest
from domain.fingerprint import with_fingerprints
from domain.flag_rules import (
    flag_variant_keys,
    flag_variants,
    sync_flag_filters_from_parameters,
    validate_flag_filters,
    with_holdout_filters,
)
from domain.lifecycle import Status, stored_status
from domain.metrics import (
    has_legacy_metrics,
    metric_uuids,
    split_saved_uuids,
    sync_ordering_with_metrics,
    sync_ordering_with_saved_metrics,
    validate_ordering_coverage,
)
from domain.scheduling import validate_scheduling_config

DATE_FIELDS = ("start_date", "end_date")


def rules_snapshot(experiment: Experiment, flag: FeatureFlag | None) -> rules.ExperimentSnapshot:
    return rules.ExperimentSnapshot(
        status=stored_status(experiment.start_date, experiment.end_date).value,  # type: ignore[arg-type]
        feature_flag_key=flag.key if flag else "",
        flag_variants=flag_variants(flag.filters) if flag else [],
        flag_deleted=bool(flag and flag.deleted),
        holdout_id=experiment.holdout_id,
        has_legacy_metrics=has_legacy_metrics(experiment.metrics, experiment.metrics_secondary),
        deleted=experiment.deleted,
        start_date=experiment.start_date,
    )


async def build_update_request(
    session: AsyncSession,
    experiment: Experiment,
    flag: FeatureFlag | None,
    actor_id: int | None,
    body: dict[str, Any],
) -> UpdateRequest:
    """The service's steps in PostHog's order; the first failure wins (reference §4.4)."""
    saved_links = await _check_fields(session, experiment, body)
    metrics_sent: dict[str, Any] = {k: body.get(k) for k in ("metrics", "metrics_secondary") if k in body}
    if metrics_sent:
        await _prepare_sent_metrics(session, experiment, body, metrics_sent)
    data = rules.validate_update_payload(rules_snapshot(experiment, flag), body)
    holdout = (
        await resolve_holdout(session, experiment.team_id, data["holdout"])
        if data.get("holdout") is not None
        else None
    )
    changes = _column_changes(data, metrics_sent)
    if "scheduling_config" in data:
        changes["scheduling_config"] = _scheduling(experiment, flag, data)
    flag_changes = _flag_changes(experiment, flag, body, data, holdout)
    _revalidate_stats(experiment, flag, data, flag_changes)
    await _finish(session, experiment, changes, saved_links, body)
    return UpdateRequest(
        actor_id=actor_id,
        changes=changes,
        flag_changes=flag_changes or None,
        saved_metric_links=saved_links,
        assumed_status=Status(stored_status(experiment.start_date, experiment.end_date).value),
    )


async def _check_fields(
    session: AsyncSession, experiment: Experiment, body: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """Serializer-level checks; returns the resolved saved-metric links when they were sent."""
    check_fields(body, creating=False)
    for name in DATE_FIELDS:
        if name in body:
            parse_datetime(name, body[name])
    rules.validate_exposure_criteria(body.get("exposure_criteria"))
    if "parameters" in body:
        rules.validate_parameters(rules.normalize_parameters_input(body["parameters"]))
    saved_links = (
        await resolve_saved_metrics(session, experiment.team_id, body["saved_metrics_ids"])
        if "saved_metrics_ids" in body
        else None
    )
    if "start_date" in body and "end_date" in body:
        rules.validate_date_range(
            parse_datetime("start_date", body["start_date"]), parse_datetime("end_date", body["end_date"])
        )
    return saved_links


def _scheduling(
    experiment: Experiment, flag: FeatureFlag | None, data: dict[str, Any]
) -> dict[str, Any] | None:
    return validate_scheduling_config(
        data["scheduling_config"],
        variant_keys=flag_variant_keys(flag.filters) if flag else [],
        archived=bool(data.get("archived", experiment.archived)),
        deleted=bool(data.get("deleted", experiment.deleted)),
    )


async def _prepare_sent_metrics(
    session: AsyncSession, experiment: Experiment, body: dict[str, Any], sent: dict[str, Any]
) -> None:
    """Give sent metrics uuids (unique against the lists not being replaced) and validate them."""
    reserved = [
        *([] if "metrics" in sent else metric_uuids(experiment.metrics)),
        *([] if "metrics_secondary" in sent else metric_uuids(experiment.metrics_secondary)),
    ]
    primary, secondary = await prepare_metrics(
        session,
        experiment.team_id,
        sent.get("metrics") if "metrics" in sent else None,
        sent.get("metrics_secondary") if "metrics_secondary" in sent else None,
        reserved_uuids=reserved,
        allow_unknown_events=bool(body.get("allow_unknown_events")),
    )
    if "metrics" in sent:
        body["metrics"] = primary or []
    if "metrics_secondary" in sent:
        body["metrics_secondary"] = secondary or []


def _column_changes(data: dict[str, Any], metrics_sent: dict[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in data.items():
        if name in ("saved_metrics_ids",):
            continue
        column = "holdout_id" if name == "holdout" else name
        if name in DATE_FIELDS:
            parsed = parse_datetime(name, value)
            changes[column] = parsed.isoformat() if parsed else None
        else:
            changes[column] = value
    return changes


def _flag_changes(
    experiment: Experiment,
    flag: FeatureFlag | None,
    body: dict[str, Any],
    data: dict[str, Any],
    holdout: dict[str, Any] | None,
) -> dict[str, Any]:
    """Flag sync only for drafts or with `update_feature_flag_params` (reference §4.4 step 4, 8)."""
    if flag is None:
        return {}
    draft = experiment.start_date is None
    changes: dict[str, Any] = {}
    if draft or body.get("update_feature_flag_params") is True:
        parameters = data.get("parameters")
        if parameters:
            filters = sync_flag_filters_from_parameters(flag.filters, parameters, holdout)
            validate_flag_filters(filters)
            changes["filters"] = filters
        elif "holdout" in data:
            changes["filters"] = with_holdout_filters(flag.filters, holdout)
    if draft and data.get("start_date") is not None and not flag.active:
        changes["active"] = True  # launch by PATCH, as the agent toolkit does
    return changes


def _revalidate_stats(
    experiment: Experiment, flag: FeatureFlag | None, data: dict[str, Any], flag_changes: dict[str, Any]
) -> None:
    if "stats_config" not in data and "parameters" not in data:
        return
    filters = flag_changes.get("filters") or (flag.filters if flag else None)
    keys = rules.resolved_variant_keys(data.get("parameters"), experiment.parameters, filters)
    stats = data.get("stats_config", experiment.stats_config)
    rules.validate_stats_config(stats, keys)


async def _finish(
    session: AsyncSession,
    experiment: Experiment,
    changes: dict[str, Any],
    saved_links: list[dict[str, Any]] | None,
    body: dict[str, Any],
) -> None:
    """Fingerprints with the post-update inputs, then orderings and their coverage check."""
    merged = {
        name: changes.get(name, getattr(experiment, name))
        for name in ("stats_config", "exposure_criteria", "only_count_matured_users", "parameters")
    }
    start = changes.get("start_date", experiment.start_date)
    start_dt = parse_datetime("start_date", start) if isinstance(start, str) else start
    primary = changes.get("metrics", experiment.metrics)
    secondary = changes.get("metrics_secondary", experiment.metrics_secondary)
    common = dict(merged, start_date=start_dt)
    changes["metrics"] = with_fingerprints(primary, **common)
    changes["metrics_secondary"] = with_fingerprints(secondary, **common)
    for kind, old, new in (
        ("primary", experiment.metrics, primary),
        ("secondary", experiment.metrics_secondary, secondary),
    ):
        key = f"{kind}_metrics_ordered_uuids"
        base = body[key] if key in body else getattr(experiment, key)
        synced = sync_ordering_with_metrics(old, new, base)
        if synced is not None:
            changes[key] = synced
    saved = await _saved_refs(session, experiment, saved_links)
    if saved_links is not None:
        _sync_saved_orderings(experiment, changes, await _saved_refs(session, experiment, None), saved)
    primary_order = changes.get("primary_metrics_ordered_uuids", experiment.primary_metrics_ordered_uuids)
    validate_ordering_coverage(
        primary_order,
        changes.get("secondary_metrics_ordered_uuids", experiment.secondary_metrics_ordered_uuids),
        changes["metrics"],
        changes["metrics_secondary"],
        saved,
    )
    _check_autopilot(experiment, changes, [uuid for uuid, _ in saved if uuid], primary_order)


def _check_autopilot(
    experiment: Experiment, changes: dict[str, Any], saved_uuids: list[str], primary_order: list[str] | None
) -> None:
    """The rules must name metrics the experiment keeps: checked when the rules are sent, and when
    a change of metrics would take one away from the stored rules."""
    metrics = [*metric_uuids(changes["metrics"]), *metric_uuids(changes["metrics_secondary"]), *saved_uuids]
    if "scheduling_config" in changes:
        primary = [*(primary_order or []), *metric_uuids(changes["metrics"])]
        validate_autopilot(changes["scheduling_config"], metrics, primary)
    else:
        check_metrics_kept(experiment.scheduling_config, metrics)


def _sync_saved_orderings(
    experiment: Experiment,
    changes: dict[str, Any],
    old_refs: list[tuple[str | None, dict[str, Any] | None]],
    new_refs: list[tuple[str | None, dict[str, Any] | None]],
) -> None:
    """Saved metrics linked or unlinked by this PATCH enter or leave their ordering (§4.4 step 7),
    on top of the ordering sent or already synced with the inline metrics."""
    old_primary, old_secondary = split_saved_uuids(old_refs)
    new_primary, new_secondary = split_saved_uuids(new_refs)
    for kind, old, new in (
        ("primary", old_primary, new_primary),
        ("secondary", old_secondary, new_secondary),
    ):
        key = f"{kind}_metrics_ordered_uuids"
        base = changes.get(key, getattr(experiment, key))
        synced = sync_ordering_with_saved_metrics(base, old, new, None, order_sent=False)
        if synced is not None:
            changes[key] = synced[0]


async def _saved_refs(
    session: AsyncSession, experiment: Experiment, saved_links: list[dict[str, Any]] | None
) -> list[tuple[str | None, dict[str, Any] | None]]:
    if saved_links is not None:
        return [(link.get("query_uuid"), link.get("metadata")) for link in saved_links]
    assert experiment.id is not None
    refs: list[tuple[str | None, dict[str, Any] | None]] = []
    for link in await links_of(session, experiment.id):
        metric = await session.get(ExperimentSavedMetric, link.saved_metric_id)
        if metric is not None:
            refs.append((metric.query.get("uuid"), link.metadata_))
    return refs
