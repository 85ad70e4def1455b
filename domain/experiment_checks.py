"""Checks on the flag behind an experiment, from its variant keys alone (usable in workflows)."""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import ValidationFailed

TOO_FEW_VARIANTS = "Feature flag must have at least 2 variants (control and at least one test variant)"
NO_CONTROL = "Feature flag must have a variant with key 'control'"


def check_launchable(variant_keys: Sequence[str]) -> None:
    if len(variant_keys) < 2:
        raise ValidationFailed(TOO_FEW_VARIANTS)
    if "control" not in variant_keys:
        raise ValidationFailed(NO_CONTROL)
