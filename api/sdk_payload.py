"""Request bodies of every SDK endpoint (/flags, /decide, capture): decoding, and the project token.

Pure functions on bytes and parsed JSON, so the hot paths stay free of pydantic and FastAPI's dependency
injection. Bodies arrive plain, gzipped (`Content-Encoding: gzip`, or `?compression=gzip-js` from
posthog-js) or base64 (`?compression=base64`, or a form field `data=`), as PostHog accepts them.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from api.body_limits import (
    MAX_BODY_BYTES,
    SURROGATE_CODE,
    TOO_DEEP,
    TOO_LARGE,
    first_surrogate,
    is_depth_error,
    surrogate_refusal,
    too_deep,
)

_GZIP_MAGIC = b"\x1f\x8b"


class PayloadError(Exception):
    """A malformed request: answered 400 (413 when too large) in PostHog's `{type, code, detail, attr}`
    shape; `type` is `validation_error` for a bad value, `invalid_request` for a body not understood."""

    def __init__(self, detail: str, *, code: str = "invalid_payload", attr: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.code, self.attr = detail, code, attr

    @property
    def status(self) -> int:
        return 413 if self.code == "payload_too_large" else 400

    @property
    def error_type(self) -> str:
        return "validation_error" if self.code in ("invalid_payload", SURROGATE_CODE) else "invalid_request"


def _gunzip(body: bytes) -> bytes:
    # wbits 47 = auto-detect gzip or zlib headers; max_length bounds the expansion.
    inflater = zlib.decompressobj(47)
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES)
    except zlib.error as error:
        raise PayloadError(f"Failed to decompress gzip body: {error}", code="parse_error") from None
    if inflater.unconsumed_tail:
        raise PayloadError(TOO_LARGE, code="payload_too_large")
    return data


def _unbase64(body: bytes) -> bytes:
    try:
        return base64.b64decode(body.strip() + b"=" * (-len(body.strip()) % 4))
    except (binascii.Error, ValueError):
        raise PayloadError("Malformed request data: invalid base64.", code="parse_error") from None


def _form_data(body: bytes) -> bytes:
    """posthog-js (and old clients) may post `data=<base64 or JSON>` form-encoded."""
    fields = parse_qs(body.decode("latin-1"))
    values = fields.get("data")
    if not values:
        raise PayloadError("Malformed request data: missing data field.", code="parse_error")
    return values[0].encode("latin-1")


def _loads(data: bytes, *, storable: bool) -> Any:
    """The parsed document, within the limits of api/body_limits.py (depth, lone surrogates)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        if is_depth_error(error):
            raise PayloadError(TOO_DEEP, code="parse_error") from None
        value = _lenient_loads(data, storable=storable)
    if too_deep(data):
        raise PayloadError(TOO_DEEP, code="parse_error")
    return value


def _lenient_loads(data: bytes, *, storable: bool) -> Any:
    try:
        # Some clients send NaN/Infinity; PostHog reads them as null, as json's parse_constant allows.
        value = json.loads(data, parse_constant=lambda _name: None)
    except RecursionError:
        raise PayloadError(TOO_DEEP, code="parse_error") from None
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("Malformed request data: invalid JSON.", code="parse_error") from None
    # The lenient parser also lets through lone surrogates (escaped or raw), which nothing downstream
    # can encode, and integers past 64 bits, which the store cannot take: refuse them now (400)
    # rather than fail later (a 500, or a 503 the SDK retries forever).
    found = first_surrogate(value)
    if found is not None:
        refusal = surrogate_refusal(*found)
        raise PayloadError(refusal.detail, code=refusal.code, attr=refusal.attr)
    if storable:
        try:
            orjson.dumps(value)
        except TypeError as error:
            raise PayloadError(f"Malformed request data: {error}.", code="parse_error") from None
    return value


def decode_body(
    body: bytes,
    *,
    content_encoding: str | None,
    content_type: str | None,
    compression: str | None,
    storable: bool = False,
) -> Any:
    """The JSON document of a request body, whatever encoding the client chose (`storable`: only values
    the event store can hold)."""
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(TOO_LARGE, code="payload_too_large")
    compression = (compression or "").lower()
    if content_type and content_type.startswith("application/x-www-form-urlencoded"):
        body = _form_data(body)
    if "gzip" in (content_encoding or "") or compression in ("gzip", "gzip-js") or body[:2] == _GZIP_MAGIC:
        body = _gunzip(body)
    elif compression == "base64" or (body[:1] not in (b"{", b"[", b" ", b"\n", b"\r", b"\t") and body):
        # Upstream also sniffs base64: a JSON document always starts with `{`, `[` or whitespace.
        body = _unbase64(body)
    if not body.strip():
        raise PayloadError("Malformed request data: empty body.", code="parse_error")
    return _loads(body, storable=storable)


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def body_token(payload: Any) -> str | None:
    """The project token of a /flags or capture envelope (`token`, `$token` or `api_key`)."""
    if not isinstance(payload, Mapping):
        return None
    return as_str(payload.get("token")) or as_str(payload.get("$token")) or as_str(payload.get("api_key"))


def query_token(query: Mapping[str, str]) -> str | None:
    return as_str(query.get("token")) or as_str(query.get("api_key"))
