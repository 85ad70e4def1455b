"""Multiple-comparison corrections (stats.md §12), as adjusted p-values.

An adjusted p-value is the smallest family-wise level (Holm) or false discovery rate
(Benjamini-Hochberg) at which that hypothesis would be rejected, so "adjusted p < alpha" reproduces
each procedure's step-down / step-up rule without a second pass, and the numbers can be shown
beside the raw p-values:

- Holm-Bonferroni: sort ascending; p̃₍ᵢ₎ = max over j ≤ i of min(1, (m - j + 1)·p₍ⱼ₎).
- Benjamini-Hochberg: sort ascending; p̃₍ᵢ₎ = min over j ≥ i of min(1, m·p₍ⱼ₎ / j).

Results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain.stats.config import Correction


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (controls the family-wise error rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in adjusted]


def benjamini_hochberg_adjusted(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg step-up adjusted p-values (controls the false discovery rate)."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, m * p[order] / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return [float(x) for x in adjusted]


def adjusted_p_values(p_values: Sequence[float], correction: Correction) -> list[float] | None:
    """The chosen correction's adjusted p-values; None for `none`."""
    if correction is Correction.HOLM:
        return holm_adjusted(p_values)
    if correction is Correction.BENJAMINI_HOCHBERG:
        return benjamini_hochberg_adjusted(p_values)
    return None
