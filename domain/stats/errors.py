"""Errors raised by the statistics engine.

Two kinds, because PostHog treats them differently: a `StatisticError` only nulls the statistical
fields of one comparison (the rest of the result is still returned), while an
`ExperimentDataError` means the data cannot be analysed at all (no baseline variant).
"""

from __future__ import annotations

from domain.errors import ValidationFailed


class StatisticError(ValueError):
    """A comparison cannot be computed (degenerate input, failed guard, bad parameter)."""


class ExperimentDataError(ValidationFailed, ValueError):
    """The per-variant data has a shape no result can be built from.

    A `ValidationFailed` so the API answers with a clear 400 instead of a 500, as upstream
    degrades its `ExperimentDataError`; also a `ValueError` for callers that catch that.
    """
