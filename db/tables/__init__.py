"""All SQLModel tables; importing this package registers them on `SQLModel.metadata`."""

from db.tables.accounts import Organization, PersonalAPIKey, Project, User
from db.tables.experiment_assets import ExperimentHoldout, ExperimentSavedMetric, ExperimentToSavedMetric
from db.tables.events import Action, Event, EventDefinition
from db.tables.experiments import AppliedOperation, Experiment, ExperimentActivity, ExperimentIdAllocation
from db.tables.flags import FeatureFlag

__all__ = [
    "Action",
    "AppliedOperation",
    "Event",
    "EventDefinition",
    "Experiment",
    "ExperimentActivity",
    "ExperimentHoldout",
    "ExperimentSavedMetric",
    "ExperimentToSavedMetric",
    "ExperimentIdAllocation",
    "FeatureFlag",
    "Organization",
    "PersonalAPIKey",
    "Project",
    "User",
]
