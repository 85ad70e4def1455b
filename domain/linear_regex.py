"""User-supplied regular expressions (`regex` / `not_regex` property filters) on a linear-time engine.

Python's `re` backtracks: `^(a+)+$` against a few dozen characters runs for hours, and one such
flag condition would stall /flags for every caller of the process. RE2 (google-re2) matches in time
linear in the text, as the engines PostHog runs these filters on do (Rust's `regex` in the flags
service, RE2 inside ClickHouse for analysis). The price is RE2's syntax: no backreferences and no
lookaround. Patterns it cannot compile are refused when a flag or metric is saved
(`check_filter_regexes`); one already stored (older data) matches nothing.

RE2's `$` is the end of the text (no match before a final newline), which is also Rust's reading.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import re2

from domain.errors import ValidationFailed

REGEX_OPERATORS = frozenset({"regex", "not_regex"})
# A pattern is echoed in the error detail; past this it is cut, the reason still says what is wrong.
_SHOWN_PATTERN_CHARS = 200

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would also print every refused pattern to stderr


class Matcher(Protocol):
    def search(self, text: str) -> object | None: ...


class RegexError(ValueError):
    """RE2 refused the pattern; `reason` is its explanation."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(reason)
        self.pattern, self.reason = pattern, reason


def compile_pattern(pattern: str) -> Matcher:
    """The compiled pattern; raises RegexError when RE2 cannot compile it."""
    try:
        compiled: Matcher = re2.compile(pattern, options=_OPTIONS)
    except re2.error as error:
        raise RegexError(pattern, _reason(error)) from None
    return compiled


def _reason(error: Exception) -> str:
    raw = error.args[0] if error.args else "invalid pattern"
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def search(matcher: Matcher, text: str) -> bool:
    try:
        return matcher.search(text) is not None
    except UnicodeEncodeError:
        return False  # RE2 reads UTF-8; a lone surrogate cannot be encoded (parsers refuse them first)


def regex_error_detail(pattern: str, reason: str) -> str:
    shown = pattern if len(pattern) <= _SHOWN_PATTERN_CHARS else pattern[:_SHOWN_PATTERN_CHARS] + "…"
    return (
        f'Invalid regular expression "{shown}": {reason}. '
        "Patterns use RE2 syntax (linear time: no backreferences or lookaround)."
    )


def _regex_filters(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every property filter with a regex operator anywhere in a JSON value (iterative: no recursion
    limit to reach, whatever the nesting the body parser let through)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            if item.get("operator") in REGEX_OPERATORS:
                yield item
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


def check_filter_regexes(value: Any, attr: str | None) -> None:
    """Refuse (400, `attr` the field) the first regex property filter in `value` that RE2 cannot
    compile; the pattern is read as evaluation reads it (`str()` of the filter's value)."""
    for prop in _regex_filters(value):
        pattern = str(prop.get("value"))
        try:
            compile_pattern(pattern)
        except RegexError as error:
            raise ValidationFailed(
                regex_error_detail(pattern, error.reason), attr=attr, code="invalid_regex"
            ) from None
