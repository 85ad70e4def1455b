"""Metric uuids and display orderings (reference §4.3 step 7 and §4.4 step 7).

Saved metrics enter these rules as `(query_uuid, link_metadata)` pairs: a link whose metadata has no
`type` (or no metadata at all) counts as primary, anything else as secondary, as upstream does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any

from domain.errors import ValidationFailed
from domain.metrics.validation import metric_uuids

SavedMetricRef = tuple[str | None, Mapping[str, Any] | None]

_FRONTEND_BUG = "This is likely a frontend bug - please refresh and try again."


def _assign(metrics: list[Any] | None, seen: set[str], new_uuid: Callable[[], str]) -> list[Any] | None:
    if metrics is None:
        return None
    prepared = deepcopy(metrics)
    for metric in prepared:
        if not isinstance(metric, dict):
            continue  # validate_metrics reports it
        original = metric.get("uuid")
        if not original or original in seen:
            metric["uuid"] = new_uuid()
        seen.add(metric["uuid"])
    return prepared


def assign_metric_uuids(
    primary: list[Any] | None,
    secondary: list[Any] | None,
    saved_uuids: Iterable[str],
    new_uuid: Callable[[], str],
) -> tuple[list[Any] | None, list[Any] | None]:
    """Deep copies where every metric has a unique uuid across both lists and `saved_uuids`.

    Missing uuids are generated and later duplicates regenerated; the first occurrence keeps its
    uuid, so existing ordering entries stay valid. On update, pass the stored list that is *not*
    being replaced inside `saved_uuids` too (upstream seeds it the same way).
    """
    seen = set(saved_uuids)
    return _assign(primary, seen, new_uuid), _assign(secondary, seen, new_uuid)


def compute_ordering(sent_order: Sequence[str] | None, metrics: Sequence[Any] | None) -> list[str]:
    """Create-time ordering: the sent list (or []) then every metric uuid not yet in it."""
    ordering = list(sent_order or [])
    for uuid in metric_uuids(metrics):
        if uuid not in ordering:
            ordering.append(uuid)
    return ordering


def saved_metric_kind(metadata: Mapping[str, Any] | None) -> str:
    """`primary` or `secondary` for a saved-metric link."""
    kind = (metadata or {}).get("type", "primary")
    return "primary" if kind == "primary" else "secondary"


def split_saved_uuids(saved: Iterable[SavedMetricRef]) -> tuple[list[str], list[str]]:
    """Saved-metric query uuids grouped into (primary, secondary), in link order."""
    primary: list[str] = []
    secondary: list[str] = []
    for uuid, metadata in saved:
        if uuid:
            (primary if saved_metric_kind(metadata) == "primary" else secondary).append(uuid)
    return primary, secondary


def orderings_with_saved_metrics(
    primary_order: Sequence[str] | None,
    secondary_order: Sequence[str] | None,
    saved: Iterable[SavedMetricRef],
) -> tuple[list[str] | None, list[str] | None]:
    """Create-time: append newly linked saved-metric uuids to the matching ordering.

    Upstream writes both lists only when something was appended (a null list then becomes []),
    otherwise both stay exactly as they were.
    """
    primary = list(primary_order or [])
    secondary = list(secondary_order or [])
    changed = False
    saved_primary, saved_secondary = split_saved_uuids(saved)
    for target, uuids in ((primary, saved_primary), (secondary, saved_secondary)):
        for uuid in uuids:
            if uuid not in target:
                target.append(uuid)
                changed = True
    if not changed:
        return (
            None if primary_order is None else list(primary_order),
            None if secondary_order is None else list(secondary_order),
        )
    return primary, secondary


def _check_one(name: str, ordering: Sequence[str] | None, expected: set[str]) -> None:
    if not expected:
        return
    if ordering is None:
        raise ValidationFailed(
            f"{name}_metrics_ordered_uuids is null but {name} metrics exist. {_FRONTEND_BUG}"
        )
    missing = expected - set(ordering)
    if missing:
        raise ValidationFailed(
            f"{name}_metrics_ordered_uuids is missing UUIDs: {sorted(missing)}. {_FRONTEND_BUG}"
        )


def validate_ordering_coverage(
    primary_order: Sequence[str] | None,
    secondary_order: Sequence[str] | None,
    primary_metrics: Sequence[Any] | None,
    secondary_metrics: Sequence[Any] | None,
    saved: Iterable[SavedMetricRef] = (),
) -> None:
    """Final check (create and update): every inline and saved metric uuid is in its ordering."""
    saved_primary, saved_secondary = split_saved_uuids(saved)
    _check_one("primary", primary_order, set(metric_uuids(primary_metrics)) | set(saved_primary))
    _check_one("secondary", secondary_order, set(metric_uuids(secondary_metrics)) | set(saved_secondary))


def _drop_and_append(base: Sequence[str], removed: set[str], added: Sequence[str]) -> list[str]:
    result = [uuid for uuid in base if uuid not in removed]
    for uuid in added:
        if uuid not in result:
            result.append(uuid)
    return result


def sync_ordering_with_metrics(
    old_metrics: Sequence[Any] | None, new_metrics: Sequence[Any] | None, base_order: Sequence[str] | None
) -> list[str] | None:
    """Update-time ordering after an inline metric list is replaced, or None when nothing changed.

    `base_order` is the ordering sent in the same PATCH when present, else the stored one. Removed
    uuids are dropped; added ones are appended in metric order (upstream iterates a set).
    """
    old = set(metric_uuids(old_metrics))
    new = metric_uuids(new_metrics)
    added = [uuid for uuid in new if uuid not in old]
    removed = old - set(new)
    if not added and not removed:
        return None
    return _drop_and_append(base_order or [], removed, added)


def sync_ordering_with_saved_metrics(
    stored_order: Sequence[str] | None,
    old_uuids: Iterable[str],
    new_uuids: Sequence[str],
    sent_order: Sequence[str] | None,
    *,
    order_sent: bool,
) -> tuple[list[str], bool] | None:
    """Update-time ordering after saved-metric links change, or None when none was added/removed.

    Returns `(ordering, auto_synced)`. `auto_synced` is True when the result is pure bookkeeping
    (no ordering sent, or the sent one equals the automatic result); upstream then saves it without
    an activity-log "reorder" entry. A genuine reorder keeps the sent order plus the add/remove.
    """
    old = set(old_uuids)
    added = [uuid for uuid in new_uuids if uuid not in old]
    removed = old - set(new_uuids)
    if not added and not removed:
        return None
    automatic = _drop_and_append(stored_order or [], removed, added)
    supplied = list(sent_order or []) if order_sent else None
    if supplied is not None and supplied != automatic:
        return _drop_and_append(supplied, removed, added), False
    return automatic, True
