"""Why a metric cannot be computed from the stored events."""

from __future__ import annotations


class MetricEngineError(Exception):
    """The metric or experiment configuration cannot be evaluated; the message is shown to users.

    Raised for definitions Flagship does not evaluate (HogQL math, cohort filters, data-warehouse
    sources, element-based action steps): failing loudly beats reporting a number computed from a
    silently ignored condition.
    """
