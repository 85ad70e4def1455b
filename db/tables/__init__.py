"""All SQLModel tables; importing this package registers them on `SQLModel.metadata`."""

from db.tables.accounts import BootstrapKey, Organization, PersonalAPIKey, Project, User
from db.tables.approvals import ApprovalPolicy, ChangeRequest, ChangeRequestApproval
from db.tables.cohorts import Cohort
from db.tables.console import ConsoleSignInCode
from db.tables.events import Action, Event, EventDefinition
from db.tables.experiment_assets import ExperimentHoldout, ExperimentSavedMetric, ExperimentToSavedMetric
from db.tables.experiments import AppliedOperation, Experiment, ExperimentActivity, ExperimentIdAllocation
from db.tables.flags import FeatureFlag
from db.tables.groups import GroupTypeMapping
from db.tables.llm_prompts import LLMPrompt
from db.tables.timeseries import ExperimentMetricResult, ExperimentTimeseriesRecalculation

__all__ = [
    "Action",
    "AppliedOperation",
    "ApprovalPolicy",
    "BootstrapKey",
    "ChangeRequest",
    "ChangeRequestApproval",
    "Cohort",
    "ConsoleSignInCode",
    "Event",
    "EventDefinition",
    "Experiment",
    "ExperimentActivity",
    "ExperimentHoldout",
    "ExperimentIdAllocation",
    "ExperimentMetricResult",
    "ExperimentSavedMetric",
    "ExperimentTimeseriesRecalculation",
    "ExperimentToSavedMetric",
    "FeatureFlag",
    "GroupTypeMapping",
    "LLMPrompt",
    "Organization",
    "PersonalAPIKey",
    "Project",
    "User",
]
