"""Resolve `holdout_id` and `saved_metrics_ids` against this project (serializer field rules)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from db.experiment_assets import holdout_by_id, saved_metrics_by_ids
from domain.drf_fields import primary_key
from domain.errors import ValidationFailed
from domain.experiment_rules import validate_saved_metrics_ids

SAVED_METRIC_MISSING = "Saved metric does not exist or does not belong to this project"


async def resolve_holdout(session: AsyncSession, team_id: int, raw: Any) -> dict[str, Any] | None:
    """`{id, filters}` of a holdout of this team, or None; another team's is "does not exist"."""
    if raw is None:
        return None
    pk = primary_key(raw)  # its type was checked with the other fields (check_int)
    holdout = await holdout_by_id(session, team_id, pk) if pk is not None else None
    if holdout is None:
        raise ValidationFailed(
            f'Invalid pk "{raw}" - object does not exist.', attr="holdout_id", code="does_not_exist"
        )
    return {"id": holdout.id, "filters": holdout.filters}


async def resolve_saved_metrics(session: AsyncSession, team_id: int, raw: Any) -> list[dict[str, Any]]:
    """Link plans `{saved_metric_id, metadata, query_uuid}` for `saved_metrics_ids`."""
    if raw is None:
        return []
    validate_saved_metrics_ids(raw)
    ids = [primary_key(item["id"]) for item in raw]
    found = await saved_metrics_by_ids(session, team_id, [pk for pk in ids if pk is not None])
    links = []
    for item, pk in zip(raw, ids, strict=True):
        metric = found.get(pk) if pk is not None else None
        if metric is None:
            raise ValidationFailed(SAVED_METRIC_MISSING, attr="saved_metrics_ids")
        links.append(
            {
                "saved_metric_id": metric.id,
                "metadata": item.get("metadata") or {},
                "query_uuid": metric.query.get("uuid"),
            }
        )
    return links
