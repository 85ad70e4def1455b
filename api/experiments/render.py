"""The experiment representation of PostHog's ExperimentSerializer (reference §3)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.render import iso
from api.schemas.accounts import user_basic
from api.schemas.flags import minimal_flag_out
from db.experiment_related import Related, load_related
from db.experiments import fingerprint_settings
from db.tables import Experiment, ExperimentHoldout, FeatureFlag
from domain.autopilot.timing import scheduled_evaluation
from domain.experiment_rules import parameters_output
from domain.fingerprint import with_fingerprints
from domain.lifecycle import LifecycleFacts, status_of
from domain.scheduling import scheduled_actions


def holdout_out(
    holdout: ExperimentHoldout | None, created_by: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    if holdout is None:
        return None
    return {
        "id": holdout.id,
        "name": holdout.name,
        "description": holdout.description,
        "filters": holdout.filters,
        "created_by": created_by,
        "created_at": iso(holdout.created_at),
        "updated_at": iso(holdout.updated_at),
    }


def experiment_status(experiment: Experiment, flag: FeatureFlag | None) -> str:
    facts = LifecycleFacts(
        start_date=experiment.start_date,
        end_date=experiment.end_date,
        archived=experiment.archived,
        flag_active=bool(flag and flag.active),
    )
    return status_of(facts).value


def _saved_metrics(experiment: Experiment, related: Related) -> list[dict[str, Any]]:
    assert experiment.id is not None
    out = []
    settings = fingerprint_settings(experiment)
    for link in related.links.get(experiment.id, []):
        metric = related.saved_metrics.get(link.saved_metric_id)
        if metric is None or metric.team_id != experiment.team_id:
            continue
        # Like upstream, the query carries the fingerprint it has in this experiment.
        query = (
            with_fingerprints([metric.query], **settings)[0]
            if isinstance(metric.query, dict)
            else metric.query
        )
        out.append(
            {
                "id": link.id,
                "experiment": experiment.id,
                "saved_metric": metric.id,
                "metadata": link.metadata_,
                "created_at": iso(link.created_at),
                "query": query,
                "name": metric.name,
            }
        )
    return out


async def experiment_out(
    session: AsyncSession,
    experiment: Experiment,
    *,
    flag: FeatureFlag | None = None,
    user_access_level: str | None = "editor",
) -> dict[str, Any]:
    """One experiment (`flag`: its flag when the caller has it, else loaded)."""
    flags = {flag.id: flag} if flag is not None and flag.id is not None else None
    related = await load_related(session, [experiment], flags)
    return render_experiment(experiment, related, user_access_level=user_access_level)


async def experiments_out(
    session: AsyncSession, experiments: Sequence[Experiment], *, user_access_level: str | None
) -> list[dict[str, Any]]:
    """A page of experiments: their related rows in one query per kind."""
    related = await load_related(session, experiments)
    return [render_experiment(e, related, user_access_level=user_access_level) for e in experiments]


def _scheduled_actions(experiment: Experiment, flag: FeatureFlag | None) -> list[dict[str, Any]]:
    """What the workflow's timers will still do, soonest first (launch/end, the next evaluation)."""
    config, start, end = experiment.scheduling_config, experiment.start_date, experiment.end_date
    actions = scheduled_actions(config, start_date=start, end_date=end)
    running = experiment_status(experiment, flag) == "running"
    evaluation = scheduled_evaluation(config, start_date=start, end_date=end, running=running)
    if evaluation is not None:
        actions.append(evaluation)
    return sorted(actions, key=lambda action: str(action["at"]))


def render_experiment(
    experiment: Experiment, related: Related, *, user_access_level: str | None
) -> dict[str, Any]:
    flag = related.flags.get(experiment.feature_flag_id)
    creator = related.users.get(experiment.created_by_id) if experiment.created_by_id else None
    holdout = related.holdout_of(experiment)
    return {
        "id": experiment.id,
        "name": experiment.name,
        "description": experiment.description,
        "start_date": iso(experiment.start_date),
        "end_date": iso(experiment.end_date),
        "feature_flag_key": flag.key if flag else None,
        "feature_flag": minimal_flag_out(flag) if flag else None,
        "holdout": holdout_out(holdout),
        "holdout_id": experiment.holdout_id if holdout else None,
        "exposure_cohort": experiment.exposure_cohort_id,
        "parameters": parameters_output(experiment.parameters),
        "secondary_metrics": experiment.secondary_metrics,
        "saved_metrics": _saved_metrics(experiment, related),
        "saved_metrics_ids": None,
        "filters": experiment.filters,
        "archived": experiment.archived,
        "deleted": experiment.deleted,
        "created_by": user_basic(creator),
        "created_at": iso(experiment.created_at),
        "updated_at": iso(experiment.updated_at),
        "type": experiment.type,
        "exposure_criteria": experiment.exposure_criteria,
        "metrics": experiment.metrics,
        "metrics_secondary": experiment.metrics_secondary,
        "stats_config": experiment.stats_config,
        "scheduling_config": experiment.scheduling_config,
        "scheduled_actions": _scheduled_actions(experiment, flag),
        "conclusion": experiment.conclusion,
        "conclusion_comment": experiment.conclusion_comment,
        "primary_metrics_ordered_uuids": experiment.primary_metrics_ordered_uuids,
        "secondary_metrics_ordered_uuids": experiment.secondary_metrics_ordered_uuids,
        "only_count_matured_users": experiment.only_count_matured_users,
        "status": experiment_status(experiment, flag),
        "user_access_level": user_access_level,
    }
