"""Deterministic bucketing, bit-for-bit identical to PostHog (server and posthog-python 7.91.1).

The hash is `sha1(f"{flag_key}.{identifier}{salt}")`, first 15 hex digits (60 bits) divided by
`float(0xFFFFFFFFFFFFFFF)`. The division must be int / *float* exactly like the SDK: an int / int true
division rounds the exact quotient once, whereas the SDK first rounds the 60-bit integer to a float, and
the two can differ in the last bit — enough to flip a user sitting on a rollout boundary.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_LONG_SCALE = float(0xFFFFFFFFFFFFFFF)
# The first 8 digest bytes read big-endian and shifted right by 4 are the first 15 hex digits; this
# avoids building and re-parsing a 40-character hex string on the /flags hot path.
_read_u64 = struct.Struct(">Q").unpack_from
_sha1 = hashlib.sha1

VARIANT_SALT = "variant"


def encode_identifier(value: str) -> bytes:
    """UTF-8 bytes of an identifier; lone surrogates (possible from JSON escapes) must not crash a request."""
    return value.encode("utf-8", "surrogatepass")


def hash_bytes(data: bytes) -> float:
    """The bucketing fraction in [0, 1] of an already-assembled hash input."""
    high_bits: int = _read_u64(_sha1(data).digest())[0]
    return (high_bits >> 4) / _LONG_SCALE


def hash_fraction(flag_key: str, distinct_id: str, salt: str = "") -> float:
    """PostHog's `_hash(key, id, salt)`: input is `"<key>.<id><salt>"` (salt appended with no separator)."""
    return hash_bytes(encode_identifier(f"{flag_key}.{distinct_id}{salt}"))


def holdout_fraction(bucketing_value: str) -> float:
    """Holdout membership hash: `"holdout-<id>"`, independent of the flag so every experiment sharing a
    holdout excludes the same people."""
    return hash_bytes(encode_identifier(f"holdout-{bucketing_value}"))


@dataclass(frozen=True, slots=True)
class VariantRange:
    """One row of the lookup table: the variant owns hash values in the half-open `[value_min, value_max)`."""

    key: str
    value_min: float
    value_max: float


def variant_lookup_table(variants: Iterable[Mapping[str, Any]]) -> tuple[VariantRange, ...]:
    """Cumulative ranges in declared order.

    Accumulates `rollout_percentage / 100` one variant at a time, in the same float operations as the SDK,
    so rounding drift over many variants lands on exactly the same boundaries.
    """
    table: list[VariantRange] = []
    value_min: float = 0
    for variant in variants:
        value_max = value_min + (variant.get("rollout_percentage") or 0) / 100
        table.append(VariantRange(str(variant["key"]), value_min, value_max))
        value_min = value_max
    return tuple(table)


def variant_for_fraction(table: Sequence[VariantRange], fraction: float) -> str | None:
    """The variant whose range holds `fraction`; None when the splits sum to less than 100 and it falls past them."""
    for row in table:
        if row.value_min <= fraction < row.value_max:
            return row.key
    return None


def matching_variant(flag_key: str, distinct_id: str, table: Sequence[VariantRange]) -> str | None:
    """The multivariate variant for an identifier (hash salted with "variant")."""
    return variant_for_fraction(table, hash_fraction(flag_key, distinct_id, VARIANT_SALT))
