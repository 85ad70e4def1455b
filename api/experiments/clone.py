"""`duplicate/` and `copy_to_project/` (reference §4.7-4.8): a create body built from the source.

The body then takes the ordinary create path (api/experiments/create_experiment.py), so flag reuse or
creation, metric checks and orderings follow the same rules as POST /experiments/.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.errors import RawError
from api.experiments.fields import check_string
from db import accounts
from db import flags as flag_queries
from db.experiment_assets import links_of
from db.experiment_names import live_names_starting_with
from db.tables import Experiment, ExperimentSavedMetric, FeatureFlag, Project
from domain.autopilot.rules import remap_autopilot
from domain.errors import ValidationFailed
from domain.experiment_copy import (
    COPY_SUFFIX,
    copy_name,
    copy_parameters,
    regenerate_metric_uuids,
    saved_metric_refs,
)
from domain.metrics import has_legacy_metrics
from domain.metrics.validation import metric_uuids

LEGACY_DUPLICATE = "Duplication is not supported for experiments using legacy metrics."
LEGACY_COPY = "Copying is not supported for experiments using legacy metrics."
TARGET_NOT_FOUND = "Target team not found."
NO_TARGET_ACCESS = "You do not have write access to the target project."


async def _saved_links(
    session: AsyncSession, experiment: Experiment
) -> list[tuple[int, dict[str, Any], Any]]:
    """(saved metric id, link metadata, saved query) of the source's links, in link order."""
    assert experiment.id is not None
    found = []
    for link in await links_of(session, experiment.id):
        metric = await session.get(ExperimentSavedMetric, link.saved_metric_id)
        if metric is not None:
            found.append((link.saved_metric_id, link.metadata_, metric.query))
    return found


async def check_not_legacy(session: AsyncSession, source: Experiment, message: str) -> None:
    """Upstream answers this one with a plain `{"detail": …}` body, before any other check."""
    saved_queries = [query for _, _, query in await _saved_links(session, source)]
    if has_legacy_metrics(source.metrics, source.metrics_secondary, saved_queries):
        raise RawError(400, {"detail": message})


async def _other_flag(session: AsyncSession, team_id: int, key: Any) -> FeatureFlag | None:
    """A flag with the copy's key in the target: its variants then replace the copied ones."""
    return await flag_queries.any_flag_by_key(session, team_id, key) if isinstance(key, str) else None


async def clone_body(
    session: AsyncSession,
    source: Experiment,
    source_flag: FeatureFlag | None,
    target_team_id: int,
    *,
    feature_flag_key: Any,
    name: Any,
) -> dict[str, Any]:
    """The create body of the copy: a draft with fresh metric uuids and `allow_unknown_events`."""
    same_project = target_team_id == source.team_id
    source_key = source_flag.key if source_flag else ""
    key = source_key if feature_flag_key is None else feature_flag_key
    existing = (
        await _other_flag(session, target_team_id, key) if not same_project or key != source_key else None
    )
    taken = await live_names_starting_with(session, target_team_id, f"{source.name}{COPY_SUFFIX}")
    links = await _saved_links(session, source) if same_project else []
    fresh = _fresh_metrics(source)
    body: dict[str, Any] = {
        "name": name or copy_name(source.name, taken),
        "feature_flag_key": key,
        "description": source.description or "",
        "type": source.type or "product",
        "parameters": copy_parameters(source.parameters, existing.filters if existing else None),
        "filters": source.filters,
        "stats_config": source.stats_config,
        "scheduling_config": _copied_rules(source, fresh, links),
        "exposure_criteria": source.exposure_criteria,
        "only_count_matured_users": source.only_count_matured_users,
        # The copy's goal is the same definition, not a fresh typo check (upstream forces it).
        "allow_unknown_events": True,
        **fresh,
    }
    if links:
        body["saved_metrics_ids"] = saved_metric_refs([(sid, metadata) for sid, metadata, _ in links])
    return body


def _copied_rules(
    source: Experiment, fresh: dict[str, Any], links: list[tuple[int, dict[str, Any], Any]]
) -> dict[str, Any] | None:
    """The autopilot rules follow the metrics to their new uuids; saved metrics linked to the copy
    keep theirs; a rule on a metric the copy does not carry is dropped."""
    old = [*metric_uuids(source.metrics), *metric_uuids(source.metrics_secondary)]
    new = [*metric_uuids(fresh["metrics"]), *metric_uuids(fresh["metrics_secondary"])]
    mapping = dict(zip(old, new, strict=False))
    for _, _, query in links:
        if isinstance(query, dict) and query.get("uuid"):
            mapping[query["uuid"]] = query["uuid"]
    return remap_autopilot(source.scheduling_config, mapping)


def _fresh_metrics(source: Experiment) -> dict[str, Any]:
    return regenerate_metric_uuids(
        source.metrics,
        source.metrics_secondary,
        source.primary_metrics_ordered_uuids,
        source.secondary_metrics_ordered_uuids,
        lambda: str(uuid.uuid4()),
    )


def _target_team_id(body: dict[str, Any]) -> int:
    """CopyExperimentToProjectSerializer's fields, in its order and DRF's words."""
    if "target_team_id" not in body:
        raise ValidationFailed("This field is required.", attr="target_team_id", code="required")
    raw = body["target_team_id"]
    if raw is None:
        raise ValidationFailed("This field may not be null.", attr="target_team_id", code="null")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip().lstrip("-").isdigit():
        raise ValidationFailed("A valid integer is required.", attr="target_team_id")
    for attr in ("feature_flag_key", "name"):
        if attr in body:
            body[attr] = check_string(attr, body[attr], max_length=10**6, allow_null=False, allow_blank=True)
    return int(raw)


async def resolve_copy_target(session: AsyncSession, ctx: ProjectContext, body: dict[str, Any]) -> Project:
    """The target project: same organization (else 404) and within the key's project scope (else 403)."""
    target_id = _target_team_id(body)
    target = await accounts.project_by_id(session, target_id)
    if target is None or target.organization_id != ctx.project.organization_id:
        raise RawError(404, {"detail": TARGET_NOT_FOUND})
    key = ctx.principal.key
    if key is not None and key.scoped_teams and target_id not in key.scoped_teams:
        raise RawError(403, {"detail": NO_TARGET_ACCESS})
    return target
