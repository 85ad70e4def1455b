"""ship_variant's request checks, and the retry-after-approval rule for gated operations."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.experiments.fields import check_bool, check_choice, check_string
from db.tables import ChangeRequest, Experiment
from domain import approvals
from domain.errors import ValidationFailed
from domain.experiment_messages import TransitionRequest
from domain.scheduling import CONCLUSIONS


def ship_request(data: dict[str, Any], base: TransitionRequest) -> TransitionRequest:
    """ShipVariantSerializer: variant_key required; conclusion/comment set only when provided."""
    if "variant_key" not in data:
        raise ValidationFailed("This field is required.", attr="variant_key", code="required")
    variant_key = check_string(
        "variant_key", data["variant_key"], max_length=400, allow_null=False, allow_blank=False
    )
    check_choice("conclusion", data.get("conclusion"), CONCLUSIONS)
    comment = check_string(
        "conclusion_comment",
        data.get("conclusion_comment"),
        max_length=10**6,
        allow_null=True,
        allow_blank=True,
    )
    release = (
        check_bool("release_to_everyone", data["release_to_everyone"])
        if "release_to_everyone" in data
        else False
    )
    provided = "conclusion" in data or "conclusion_comment" in data
    return base.model_copy(
        update={
            "variant_key": variant_key,
            "release_to_everyone": release,
            "conclusion": data.get("conclusion"),
            "conclusion_comment": comment,
            "conclusion_provided": provided,
        }
    )


async def already_applied(
    session: AsyncSession, experiment: Experiment, operation: str, req: TransitionRequest
) -> bool:
    """A retry of a request that waited for approval, after the approved change was applied and
    nothing else happened since, returns 200 with that result instead of doing it twice."""
    if approvals.action_key_for(operation) is None or experiment.id is None:
        return False
    intent = approvals.operation_intent(operation, experiment.id, req.model_dump())
    applied = (
        await session.exec(
            select(ChangeRequest)
            .where(
                ChangeRequest.experiment_id == experiment.id,
                ChangeRequest.intent_hash == approvals.intent_hash(intent),
                ChangeRequest.state == "applied",
            )
            .order_by(col(ChangeRequest.applied_at).desc())
        )
    ).first()
    return applied is not None and (applied.result_data or {}).get("version") == experiment.version
