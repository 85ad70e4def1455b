"""Property filters of flag conditions, matched the way posthog-python 7.91.1 matches them locally.

Each filter compiles once into a `PropertyMatcher` returning True, False, or None when inconclusive —
wherever the SDK raises `InconclusiveMatchError` (property not sent, unusable value or filter). /flags only
knows the properties sent with the request, so an inconclusive condition does not match, visibly.

Gaps: cohort and flag-dependency filters are always inconclusive (no such data reaches here). Regexes run
on RE2 (domain/linear_regex.py: linear time, `$` = end of string as in the SDK's Rust-compatibility
rewrite and the flags service); patterns only Python's `re` reads (backreferences, lookaround) match
nothing here, and the API refuses them when a flag is saved.
"""

from __future__ import annotations

import calendar
import contextlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import eq, ge, gt, le, lt, ne
from typing import Any

from domain.linear_regex import Matcher, RegexError, compile_pattern, search

PropertyMatcher = Callable[[Mapping[str, Any]], bool | None]
_ValueTest = Callable[[Any], bool | None]


class InconclusiveMatchError(Exception):
    """The filter cannot be decided from the properties given (the SDK's exception of the same name)."""


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NUMERIC_STRING = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TRUTHS = {"true": True, "false": False}
_RELATIVE_DATE = re.compile(r"^-?(?P<number>[0-9]+)(?P<interval>[a-z])$")
_BARE_YEAR, _SPACED_OFFSET = re.compile(r"\d{4}"), re.compile(r" ([+-]\d{2}:\d{2})$")
# Keyed by the positive operator; `not_<op>` negates it.
_TEXT_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "icontains": lambda value, needle: needle in value,
    "starts_with": str.startswith,
    "ends_with": str.endswith,
}
_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {"gt": gt, "gte": ge, "lt": lt, "lte": le}
_SEMVER_COMPARISONS = {f"semver_{name}": test for name, test in {**_ORDERINGS, "eq": eq, "neq": ne}.items()}
_SEMVER_RANGES = ("semver_tilde", "semver_caret", "semver_wildcard")


def to_property_string(value: Any, quoted: bool = False) -> str:
    """Top-level strings as-is, anything else as compact JSON; non-JSON values (NaN, sets) are inconclusive."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if quoted else value
    if isinstance(value, list):
        return "[" + ",".join(to_property_string(item, True) for item in value) + "]"
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise InconclusiveMatchError("property object keys must be strings")
        items = (
            f"{json.dumps(k, ensure_ascii=False)}:{to_property_string(value[k], True)}" for k in sorted(value)
        )
        return "{" + ",".join(items) + "}"
    return _json_scalar(value)


def _json_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        if "e" not in text:
            return text
        mantissa, exponent_text = text.split("e")
        exponent = int(exponent_text)
        if -6 < exponent < 0:
            return format(Decimal(text), "f")
        return f"{mantissa}e{'+' if exponent >= 0 else ''}{exponent}"
    raise InconclusiveMatchError(f"{type(value).__name__} is not JSON-compatible")


def _truth(value: Any) -> bool | None:
    """True/False for booleans, "true"/"false" in any case and lists of them (all true); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        truths = [_truth(item) for item in value]
        return None if None in truths else all(truths)
    return _TRUTHS.get(value.lower()) if isinstance(value, str) else None


def parse_number(value: Any) -> float | None:
    """A finite float from a number or a plain decimal string; None otherwise (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    if isinstance(value, str) and not _NUMERIC_STRING.fullmatch(value):
        return None
    try:
        parsed = float(value)
    except (ValueError, OverflowError):
        return None
    return parsed if math.isfinite(parsed) else None


def parse_datetime(value: str) -> datetime:
    """ISO-8601 (plus `Z`, ` UTC`, a space before the offset, a bare year); naive results are UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif text.upper().endswith(" UTC"):
        text = text[:-4] + "+00:00"
    elif _BARE_YEAR.fullmatch(text):
        # The SDK takes today's month and day in local time; a server's local zone is meaningless: UTC.
        today = datetime.now(UTC)
        return datetime(int(text), today.month, today.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(_SPACED_OFFSET.sub(r"\1", text) if " " in text else text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _subtract_months(moment: datetime, months: int) -> datetime | None:
    # One month at a time, clamping the day at each step (31 March - 2 months = 28 January), per the SDK spec.
    current = moment.year * 12 + moment.month - 1
    target = current - months
    if not 1 <= target // 12 <= 9999:
        return None
    day = moment.day
    for index in range(current - 1, target - 1, -1):
        if day <= 28:
            break
        day = min(day, calendar.monthrange(index // 12, index % 12 + 1)[1])
    return moment.replace(year=target // 12, month=target % 12 + 1, day=day)


def _subtract_years(moment: datetime, years: int) -> datetime | None:
    year = moment.year - years
    if not 1 <= year <= 9999:
        return None
    day = 28 if years > 0 and (moment.month, moment.day) == (2, 29) else moment.day
    return moment.replace(year=year, day=day)


def relative_date(value: str, now: datetime | None = None) -> datetime | None:
    """`-7d`, `24h`, `2w`, `3m`, `1y` back from now; None if not a (supported) relative date."""
    match = _RELATIVE_DATE.search(value)
    if match is None or int(match["number"]) >= 10_000:
        return None
    number, interval = int(match["number"]), match["interval"]
    moment = now or datetime.now(UTC)
    steps = {"h": timedelta(hours=number), "d": timedelta(days=number), "w": timedelta(weeks=number)}
    if interval in steps:
        return moment - steps[interval]
    if interval == "m":
        return _subtract_months(moment, number)
    return _subtract_years(moment, number) if interval == "y" else None


def _date_filter(value: Any) -> Callable[[], datetime]:
    """The filter's date, as a thunk: relative dates (and bare years) move with the clock."""
    text = str(value)

    def resolve() -> datetime:
        try:
            return relative_date(text) or parse_datetime(text)
        except (ValueError, OverflowError) as error:
            raise InconclusiveMatchError("the date set on the flag is not a valid format") from error

    if not _RELATIVE_DATE.search(text) and not _BARE_YEAR.fullmatch(text.strip()):
        # An invalid date raises at match time instead: a null property must still be a plain mismatch.
        with contextlib.suppress(InconclusiveMatchError):
            fixed = resolve()
            return lambda: fixed
    return resolve


def _semver_part(part: str) -> int:
    # Semver 2.0.0 forbids leading zeros; the SDK rejects them rather than normalising.
    if not part or not part.isdigit() or (len(part) > 1 and part[0] == "0"):
        raise ValueError(f"invalid semver identifier {part!r}")
    return int(part)


def parse_semver(value: Any) -> tuple[int, int, int]:
    """`v1.2.3-beta+b` -> (1, 2, 3); missing minor/patch are 0."""
    parts = str(value).strip().lstrip("vV").split("-")[0].split("+")[0].split(".")
    major = _semver_part(parts[0])
    minor = _semver_part(parts[1]) if len(parts) > 1 and parts[1] else 0
    patch = _semver_part(parts[2]) if len(parts) > 2 and parts[2] else 0
    return major, minor, patch


def _semver_bounds(operator: str, value: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Half-open [lower, upper) of the range operators ~ (tilde), ^ (caret) and x.* (wildcard)."""
    if operator == "semver_wildcard":
        cleaned = str(value).strip().lstrip("vV").replace("*", "").rstrip(".")
        # Only the first three components are read (and validated), as in the SDK.
        parts = [_semver_part(p) for p in [p for p in cleaned.split(".") if p][:3]]
        if not parts:
            raise ValueError("invalid wildcard pattern")
        lower = (*parts, 0, 0)[:3]
        return lower, (*parts[:-1], parts[-1] + 1, 0, 0)[:3]
    major, minor, patch = parse_semver(value)
    if operator == "semver_tilde":
        return (major, minor, patch), (major, minor + 1, 0)
    if major > 0:
        return (major, minor, patch), (major + 1, 0, 0)
    return (major, minor, patch), ((0, minor + 1, 0) if minor > 0 else (0, 0, patch + 1))


def _compile_regex(pattern: str) -> Matcher | None:
    try:
        return compile_pattern(pattern)
    except RegexError:
        return None


def _exact_target(value: Any) -> Callable[[str, Any], bool]:
    """Compare the lowered string form of the property (`text`) or its raw value with the filter."""
    truth = True if value == [] else _truth(value)
    if truth is not None:
        # "true"/"True"/True are one value, whatever the property's type.
        return lambda text, raw: (_truth(raw) is True) == truth
    if isinstance(value, list):
        candidates = frozenset(to_property_string(item).lower() for item in value)
        return lambda text, raw: text in candidates
    expected = to_property_string(value).lower()
    return lambda text, raw: text == expected


def _exact_test(value: Any, negate: bool) -> _ValueTest:
    target = _exact_target(value)
    # Stringified even when the comparison ignores it: a non-JSON property is inconclusive in every branch.
    return lambda raw: target(to_property_string(raw).lower(), raw) is not negate


def _ascii_lower(text: str) -> str:
    # Only A-Z fold, as in the SDK and the flags service; for ASCII text str.lower() is that, and faster.
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _text_test(operator: str, value: Any) -> _ValueTest:
    negate = operator.startswith("not_")
    compare = _TEXT_OPERATORS[operator.removeprefix("not_")]
    needle = _ascii_lower(to_property_string(value))
    return lambda raw: compare(_ascii_lower(to_property_string(raw)), needle) is not negate


def _regex_test(operator: str, value: Any) -> _ValueTest:
    # An empty pattern compiles and matches everything, as the SDK's explicit special case does.
    regex = _compile_regex(str(value))
    negate = operator == "not_regex"

    def test(raw: Any) -> bool:
        text = to_property_string(raw)
        # An invalid pattern matches nothing, for not_regex too.
        return regex is not None and search(regex, text) is not negate

    return test


def _numeric_test(operator: str, value: Any) -> _ValueTest:
    threshold = parse_number(value)
    if threshold is None:
        raise InconclusiveMatchError("the numeric condition is not a finite number")
    compare = _ORDERINGS[operator]

    def test(raw: Any) -> bool:
        number = parse_number(raw)
        return number is not None and compare(number, threshold)

    return test


def _date_test(operator: str, value: Any) -> _ValueTest:
    filter_date = _date_filter(value)
    before = operator == "is_date_before"

    def test(raw: Any) -> bool:
        if raw is None:
            return False
        bound = filter_date()
        if isinstance(raw, str):
            try:
                raw = parse_datetime(raw)
            except (ValueError, OverflowError) as error:
                raise InconclusiveMatchError("the date provided is not a valid format") from error
        elif isinstance(raw, datetime):
            raw = raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)
        elif isinstance(raw, date):
            bound = bound.date()  # type: ignore[assignment]
        else:
            raise InconclusiveMatchError("the date provided must be a string or date object")
        return bool(raw < bound if before else raw > bound)

    return test


def _semver_test(operator: str, value: Any) -> _ValueTest:
    check: Callable[[tuple[int, ...]], bool] | None = None
    with contextlib.suppress(ValueError, TypeError):
        if operator in _SEMVER_COMPARISONS:
            compare, expected = _SEMVER_COMPARISONS[operator], parse_semver(value)
            check = lambda version: compare(version, expected)  # noqa: E731 - a closure over the parsed filter
        else:
            lower, upper = _semver_bounds(operator, value)
            check = lambda version: lower <= version < upper  # noqa: E731 - as above

    def test(raw: Any) -> bool:
        # A null property is a plain mismatch, decided before the filter value is even looked at.
        if raw is None:
            return False
        try:
            if check is None:
                raise ValueError(f"semver value {value!r} is not valid for {operator}")
            return check(parse_semver(raw))
        except (ValueError, TypeError) as error:
            raise InconclusiveMatchError(str(error)) from error

    return test


def _value_test(operator: str, value: Any) -> _ValueTest:
    """Raises InconclusiveMatchError for an unknown operator or a filter value it cannot use."""
    if operator in ("is_set", "is_not_set"):
        return lambda raw: operator == "is_set"
    if operator in ("exact", "is_not"):
        return _exact_test(value, negate=operator == "is_not")
    if operator.removeprefix("not_") in _TEXT_OPERATORS:
        return _text_test(operator, value)
    if operator in ("regex", "not_regex"):
        return _regex_test(operator, value)
    if operator in _ORDERINGS:
        return _numeric_test(operator, value)
    if operator in ("is_date_before", "is_date_after"):
        return _date_test(operator, value)
    if operator in _SEMVER_COMPARISONS or operator in _SEMVER_RANGES:
        return _semver_test(operator, value)
    raise InconclusiveMatchError(f"unknown operator {operator}")


def _inconclusive(values: Mapping[str, Any]) -> None:
    return None


def compile_property(prop: Mapping[str, Any]) -> PropertyMatcher:
    """Compile one filter `{key, operator, value, type}`; a missing property is inconclusive (even for is_not_set)."""
    key = prop.get("key") if isinstance(prop, Mapping) else None
    if not isinstance(key, str) or prop.get("type") in ("cohort", "flag"):
        return _inconclusive
    try:
        test = _value_test(prop.get("operator") or "exact", prop.get("value"))
    except InconclusiveMatchError:
        return _inconclusive

    def matcher(values: Mapping[str, Any]) -> bool | None:
        if key not in values:
            return None
        try:
            return test(values[key])
        except InconclusiveMatchError:
            return None

    return matcher


def compile_properties(props: Iterable[Mapping[str, Any]]) -> PropertyMatcher:
    """AND of filters: any definite mismatch wins (order never matters), then any inconclusive one."""
    matchers = tuple(compile_property(prop) for prop in props)

    def match_all(values: Mapping[str, Any]) -> bool | None:
        inconclusive = False
        for matcher in matchers:
            result = matcher(values)
            if result is False:
                return False
            inconclusive = inconclusive or result is None
        return None if inconclusive else True

    return match_all


def match_property(prop: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """One-off SDK-style check: True/False, or InconclusiveMatchError when it cannot be decided."""
    result = compile_property(prop)(values)
    if result is None:
        raise InconclusiveMatchError(f"cannot match property {prop.get('key')!r} with the values given")
    return result
