"""Saved metrics API (reference §7): rows are plain writes; unlinking goes through the workflows."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import ProjectContext
from api.experiments.fanout import Plan, update_each
from api.experiments.fields import check_json_list, check_string
from api.render import iso
from api.schemas.accounts import user_basic
from api.temporal import TemporalConnection
from db import accounts
from db.experiment_assets import links_of
from db.saved_metrics import delete_links_of, live_experiments_linked
from db.tables import Experiment, ExperimentSavedMetric, FeatureFlag
from db.types import utcnow
from domain.errors import ValidationFailed
from domain.metrics import split_saved_uuids, sync_ordering_with_saved_metrics
from domain.saved_metric_rules import normalize_query_uuid, validate_saved_metric_query


def _check_fields(body: dict[str, Any], *, required: bool) -> None:
    """ExperimentSavedMetricSerializer's fields in declaration order, in DRF's words."""
    for attr in ("name", "query"):
        if required and attr not in body:
            raise ValidationFailed("This field is required.", attr=attr, code="required")
    if "name" in body:
        body["name"] = check_string("name", body["name"], max_length=400, allow_null=False, allow_blank=False)
    if "description" in body:
        body["description"] = check_string(
            "description", body["description"], max_length=400, allow_null=True, allow_blank=True
        )
    if "query" in body and body["query"] is None:
        raise ValidationFailed("This field may not be null.", attr="query", code="null")
    if "tags" in body:
        check_json_list("tags", body["tags"])
        body["tags"] = [
            check_string("tags", tag, max_length=255, allow_null=False, allow_blank=False)
            for tag in body["tags"]
        ]


def _new_uuid() -> str:
    return str(uuid.uuid4())


async def create_saved_metric(
    session: AsyncSession, ctx: ProjectContext, body: dict[str, Any]
) -> ExperimentSavedMetric:
    _check_fields(body, required=True)
    validate_saved_metric_query(body["query"])
    now = utcnow()
    metric = ExperimentSavedMetric(
        team_id=ctx.project_id,
        name=body["name"].strip(),
        description=body.get("description"),
        query=normalize_query_uuid(body["query"], None, _new_uuid),
        tags=list(body.get("tags") or []),
        created_by_id=ctx.principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(metric)
    await session.commit()
    return metric


async def update_saved_metric(
    session: AsyncSession, metric: ExperimentSavedMetric, body: dict[str, Any], *, partial: bool
) -> ExperimentSavedMetric:
    """Only name, description, query and tags change; the query keeps its uuid."""
    _check_fields(body, required=not partial)
    if "query" in body:
        validate_saved_metric_query(body["query"])
        metric.query = normalize_query_uuid(body["query"], (metric.query or {}).get("uuid"), _new_uuid)
    if "name" in body:
        metric.name = body["name"].strip()
    if "description" in body:
        metric.description = body["description"]
    if "tags" in body:
        metric.tags = list(body["tags"])
    metric.updated_at = utcnow()
    session.add(metric)
    await session.commit()
    return metric


async def _link_refs(session: AsyncSession, experiment_id: int) -> list[dict[str, Any]]:
    refs = []
    for link in await links_of(session, experiment_id):
        metric = await session.get(ExperimentSavedMetric, link.saved_metric_id)
        refs.append(
            {
                "saved_metric_id": link.saved_metric_id,
                "metadata": link.metadata_,
                "query_uuid": (metric.query or {}).get("uuid") if metric else None,
            }
        )
    return refs


def _unlink_plan(session: AsyncSession, saved_metric_id: int) -> Plan:
    async def plan(experiment: Experiment, flag: FeatureFlag | None) -> dict[str, Any] | None:
        assert experiment.id is not None
        old = await _link_refs(session, experiment.id)
        new = [ref for ref in old if ref["saved_metric_id"] != saved_metric_id]
        changes: dict[str, Any] = {}
        split_old = split_saved_uuids((ref["query_uuid"], ref["metadata"]) for ref in old)
        split_new = split_saved_uuids((ref["query_uuid"], ref["metadata"]) for ref in new)
        for kind, before, after in zip(("primary", "secondary"), split_old, split_new, strict=True):
            key = f"{kind}_metrics_ordered_uuids"
            synced = sync_ordering_with_saved_metrics(
                getattr(experiment, key), before, after, None, order_sent=False
            )
            if synced is not None:
                changes[key] = synced[0]
        return {"changes": changes, "saved_metric_links": new}

    return plan


async def delete_saved_metric(
    session: AsyncSession, temporal: TemporalConnection, ctx: ProjectContext, metric: ExperimentSavedMetric
) -> None:
    """Unlink it from every live experiment (their orderings drop its uuid), then delete the row."""
    assert metric.id is not None
    metric_id = metric.id
    linked = await live_experiments_linked(session, metric_id)
    await update_each(session, temporal, ctx, linked, _unlink_plan(session, metric_id))
    await delete_links_of(session, metric_id)
    stored = await session.get(ExperimentSavedMetric, metric_id)
    if stored is not None:
        await session.delete(stored)
    await session.commit()


async def saved_metric_out(session: AsyncSession, metric: ExperimentSavedMetric) -> dict[str, Any]:
    creator = await accounts.user_by_id(session, metric.created_by_id) if metric.created_by_id else None
    return {
        "id": metric.id,
        "name": metric.name,
        "description": metric.description,
        "query": metric.query,
        "created_by": user_basic(creator),
        "created_at": iso(metric.created_at),
        "updated_at": iso(metric.updated_at),
        "tags": list(metric.tags),
        "user_access_level": "editor",
    }
