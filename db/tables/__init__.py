"""All SQLModel tables; importing this package registers them on `SQLModel.metadata`."""

from db.tables.accounts import Organization, PersonalAPIKey, Project, User
from db.tables.events import Action, Event, EventDefinition
from db.tables.experiment_assets import ExperimentHoldout, ExperimentSavedMetric, ExperimentToSavedMetric
from db.tables.experiments import AppliedOperation, Experiment, ExperimentActivity, ExperimentIdAllocation
from db.tables.flags import FeatureFlag
from db.tables.groups import GroupTypeMapping

__all__ = [
    "Action",
    "AppliedOperation",
    "Event",
    "EventDefinition",
    "Experiment",
    "ExperimentActivity",
    "ExperimentHoldout",
    "ExperimentIdAllocation",
    "ExperimentSavedMetric",
    "ExperimentToSavedMetric",
    "FeatureFlag",
    "GroupTypeMapping",
    "Organization",
    "PersonalAPIKey",
    "Project",
    "User",
]
