"""Pure rules of duplicating an experiment (`duplicate` and `copy_to_project`, reference §4.7-4.8)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from copy import deepcopy
from typing import Any

from domain.flag_rules import flag_variants

COPY_SUFFIX = " (Copy)"


def copy_name(source_name: str, taken: Collection[str]) -> str:
    """`<name> (Copy)`, then `<name> (Copy) 1`, `(Copy) 2`, ... until unused (upstream's loop)."""
    base = f"{source_name}{COPY_SUFFIX}"
    candidate, counter = base, 1
    while candidate in taken:
        candidate = f"{base} {counter}"
        counter += 1
    return candidate


def _remap(metrics: Sequence[Any] | None, mapping: dict[str, str], new_uuid: Callable[[], str]) -> list[Any]:
    copied = deepcopy(list(metrics or []))
    for metric in copied:
        if not isinstance(metric, dict):
            continue
        old = metric.get("uuid")
        metric["uuid"] = new_uuid()
        metric.pop("fingerprint", None)  # recomputed by create for the copy's own inputs
        if isinstance(old, str) and old:
            mapping[old] = metric["uuid"]
    return copied


def _remap_order(order: Sequence[str] | None, mapping: Mapping[str, str]) -> list[str] | None:
    """Inline metric uuids follow their metric; anything else (saved-metric uuids) stays as it is."""
    if order is None:
        return None
    return [mapping.get(uuid, uuid) for uuid in order]


def regenerate_metric_uuids(
    primary: Sequence[Any] | None,
    secondary: Sequence[Any] | None,
    primary_order: Sequence[str] | None,
    secondary_order: Sequence[str] | None,
    new_uuid: Callable[[], str],
) -> dict[str, Any]:
    """Copies of both metric lists with fresh uuids, and the orderings rewritten to match.

    Fresh uuids keep the copy's timeseries results apart from the source's: results are keyed by
    metric uuid and fingerprint.
    """
    mapping: dict[str, str] = {}
    metrics = _remap(primary, mapping, new_uuid)
    metrics_secondary = _remap(secondary, mapping, new_uuid)
    return {
        "metrics": metrics,
        "metrics_secondary": metrics_secondary,
        "primary_metrics_ordered_uuids": _remap_order(primary_order, mapping),
        "secondary_metrics_ordered_uuids": _remap_order(secondary_order, mapping),
    }


def copy_parameters(
    parameters: Mapping[str, Any] | None, existing_flag_filters: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The copy's parameters: an existing target flag with variants imposes them (upstream's rule)."""
    copied = deepcopy(dict(parameters or {}))
    variants = flag_variants(existing_flag_filters) if existing_flag_filters is not None else []
    if variants:
        copied["feature_flag_variants"] = deepcopy(variants)
    return copied


def saved_metric_refs(links: Sequence[tuple[int, Mapping[str, Any] | None]]) -> list[dict[str, Any]]:
    """`saved_metrics_ids` items for the copy; an empty link metadata is left out, as it was sent."""
    refs: list[dict[str, Any]] = []
    for saved_metric_id, metadata in links:
        item: dict[str, Any] = {"id": saved_metric_id}
        if metadata:
            item["metadata"] = deepcopy(dict(metadata))
        refs.append(item)
    return refs
