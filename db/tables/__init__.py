"""All SQLModel tables; importing this package registers them on `SQLModel.metadata`."""

from db.tables.accounts import Organization, PersonalAPIKey, Project, User
from db.tables.events import Action, Event, EventDefinition
from db.tables.experiments import AppliedOperation, Experiment, ExperimentActivity
from db.tables.flags import FeatureFlag

__all__ = [
    "Action",
    "AppliedOperation",
    "Event",
    "EventDefinition",
    "Experiment",
    "ExperimentActivity",
    "FeatureFlag",
    "Organization",
    "PersonalAPIKey",
    "Project",
    "User",
]
