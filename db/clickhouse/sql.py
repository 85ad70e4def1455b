"""ClickHouse SQL text: literals and the property expressions every other piece is built from.

Values are spliced as literals, never bound: the same text then runs unchanged through the network
client and the in-process engine (chdb), whose parameter formats differ. `string` is the only way a
user-supplied text reaches SQL, and tests/db/test_clickhouse_backend.py throws hostile texts at it.

Properties are JSON text (`properties String`, as PostHog stores them). An absent key and JSON `null`
both read as null, which is how the embedded engine treats them everywhere it reads a property
(filters, variants, numbers, sessions).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

NEVER = 9_223_372_036_854_775_807  # the embedded engine's NEVER: later than any timestamp (Int64 max)
# `domain.flag_properties.parse_number`'s numeric strings, anchored (RE2 has no fullmatch).
NUMERIC_TEXT = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


def string(value: str) -> str:
    """A ClickHouse string literal: backslash escapes, so any text (quotes, NUL, newlines) is exact."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    return f"'{escaped}'"


def integer(value: int) -> str:
    return str(int(value))


def number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return repr(float(value))


def strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(string(v) for v in values) + "]"


def integers(values: Iterable[int]) -> str:
    """An `Array(Int64)` literal (typed, so an empty or small-valued array is still Int64)."""
    return "CAST([" + ", ".join(integer(v) for v in values) + "] AS Array(Int64))"


def instant(micros: int) -> str:
    """A `DateTime64(6, 'UTC')` for comparisons with the `timestamp` column."""
    return f"fromUnixTimestamp64Micro(toInt64({integer(micros)}), 'UTC')"


def raw(key: str) -> str:
    """The value's JSON text ('' when absent): the one parse of the properties per key and row.

    Every other property expression derives from this one (ClickHouse computes an identical
    subexpression once per row), so a property costs one JSON parse however often it is read."""
    return f"JSONExtractRaw(properties, {string(key)})"


def is_null(key: str) -> str:
    """Absent or JSON null."""
    return f"{raw(key)} IN ('', 'null')"


def is_text(key: str) -> str:
    return f"startsWith({raw(key)}, '\"')"


def _unquoted(key: str) -> str:
    return f"JSONExtractString({raw(key)})"


def text(key: str) -> str:
    """`to_property_string`: a string as itself, any other value as its JSON text."""
    return f"if({is_text(key)}, {_unquoted(key)}, {raw(key)})"


def text_or_empty(key: str) -> str:
    """The string value, or '' when the value is not a string."""
    return f"if({is_text(key)}, {_unquoted(key)}, '')"


def number_or_null(key: str) -> str:
    """`parse_number`: a finite float from a JSON number or a plain decimal string, else NULL."""
    first = f"substring({raw(key)}, 1, 1)"
    value = (
        f"multiIf({first} IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'), toFloat64OrNull({raw(key)}), "
        f"{is_text(key)} AND match({_unquoted(key)}, {string(NUMERIC_TEXT)}), toFloat64OrNull({_unquoted(key)}), NULL)"
    )
    return f"if(isFinite(ifNull({value}, nan)), {value}, NULL)"


def number_or_zero(key: str) -> str:
    """`coalesce(toFloat(property), 0)`: what a sum/avg/min/max metric reads per event."""
    return f"ifNull({number_or_null(key)}, 0.)"
