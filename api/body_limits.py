"""What a request body may be, for every route: the size cap, the nesting limit, and no lone surrogates.

One set of rules for the REST API (`BodyGuard`, ahead of FastAPI's parsing) and the SDK endpoints
(api/sdk_asgi.py, api/sdk_payload.py), so a hostile body gets the same clear 4xx everywhere:

- **20 MiB** (`MAX_BODY_BYTES`), as PostHog's capture: refused with 413 while the body streams in (a
  declared `Content-Length` past it before a byte is read), never buffered whole first.
- **128 levels of nesting** (`MAX_JSON_DEPTH`): serde_json's limit, so PostHog's Rust capture and
  flags services refuse the same documents. Python's own parser would raise RecursionError on deep
  ones, and the event store's serializer stops at 254 levels.
- **No lone surrogates** (`"\\ud800"`): DRF's CharField refuses them (`surrogate_characters_not_allowed`,
  naming the first one), and neither UTF-8, PostgreSQL nor Temporal's payload converter can hold one.
- **No NUL characters** in REST bodies (`"\\u0000"`): DRF's CharField refuses them too
  (`null_characters_not_allowed`), and PostgreSQL's text and jsonb cannot store them. (Capture keeps
  PostHog's rule instead: NUL becomes U+FFFD.)
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple

import numpy as np
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 20 * 1024 * 1024
MAX_JSON_DEPTH = 128
TOO_LARGE = "Request body is too large: the limit is 20 MiB."
TOO_DEEP = f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels"
SURROGATE_CODE = "surrogate_characters_not_allowed"
_SURROGATE = re.compile("[\ud800-\udfff]")
_NUL = re.compile("\x00")
NUL_REFUSAL_DETAIL = "Null characters are not allowed."
_MARKS = bytes(
    1 if byte in b"[{" else 255 if byte in b"]}" else 2 if byte == ord('"') else 0 for byte in range(256)
)
_JSON_HEADERS = [(b"content-type", b"application/json")]


class BodyRefusal(NamedTuple):
    """A refused body, in PostHog's `{type, code, detail, attr}` terms."""

    status: int
    type: str
    code: str
    detail: str
    attr: str | None = None

    def body(self) -> bytes:
        return orjson.dumps({"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr})


TOO_LARGE_REFUSAL = BodyRefusal(413, "invalid_request", "payload_too_large", TOO_LARGE)
TOO_DEEP_REFUSAL = BodyRefusal(400, "invalid_request", "parse_error", TOO_DEEP)


def too_deep(body: bytes) -> bool:
    """Whether a JSON document (one its parser accepted) nests deeper than MAX_JSON_DEPTH.

    Measured on the bytes, vectorized: brackets outside strings, then their running balance.
    Walking the parsed value instead cost a capture batch several times its parsing."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return False  # cannot nest deeper than it has brackets: the common case
    if b"\\" in body:
        # Escaped backslashes out first (pairs, left to right, as a parser reads them), then every
        # backslash left escapes the character after it: dropping escaped quotes leaves only the
        # quotes that open and close strings.
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Opening brackets become 1, closing ones 255 (-1 as int8), quotes 2, everything else 0.
    marks = np.frombuffer(body.translate(_MARKS), dtype=np.int8)
    special = marks[np.flatnonzero(marks)]  # quotes and brackets, in order
    quotes = special == 2
    # With no escaped quote left, every quote opens or closes a string: an odd count so far means
    # the bracket is inside one.
    steps = special[(np.bitwise_xor.accumulate(quotes) == 0) & ~quotes]
    return bool(steps.size) and int(np.cumsum(steps, dtype=np.int32).max()) > MAX_JSON_DEPTH


def _path(parts: tuple[str, ...]) -> str | None:
    return "__".join(parts) or None  # drf-exceptions-hog joins nested fields with "__"


def first_surrogate(value: Any) -> tuple[str | None, str] | None:
    """(attr, character) of the first lone surrogate in document order."""
    return _first_match(value, _SURROGATE)


def _first_match(value: Any, pattern: re.Pattern[str]) -> tuple[str | None, str] | None:
    """(attr, match) of the first string matching `pattern` in document order; a key's counts
    against the object holding it."""
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            found = pattern.search(item)
            if found:
                return _path(path), found[0]
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                stack.append((child, (*path, key)))
                stack.append((key, path))  # popped before its value
        elif isinstance(item, list):
            stack.extend((child, (*path, str(index))) for index, child in reversed(list(enumerate(item))))
    return None


def surrogate_refusal(attr: str | None, character: str) -> BodyRefusal:
    detail = f"Surrogate characters are not allowed: U+{ord(character):X}."
    return BodyRefusal(400, "validation_error", SURROGATE_CODE, detail, attr)


def json_refusal(body: bytes) -> BodyRefusal | None:
    """Why this JSON body is refused, or None. Other syntax errors are left to the route's parser,
    which words them as it always has."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if is_depth_error(error):
            return TOO_DEEP_REFUSAL
        try:
            # What FastAPI's parser reads: lone surrogates, escaped or raw, get through it.
            value = json.loads(body)
        except RecursionError:
            return TOO_DEEP_REFUSAL
        except ValueError:  # includes UnicodeDecodeError
            return None
        found = first_surrogate(value)
        if found is not None:
            return surrogate_refusal(*found)
    if too_deep(body):
        return TOO_DEEP_REFUSAL
    return _nul_refusal(body, value)


def _nul_refusal(body: bytes, value: Any) -> BodyRefusal | None:
    # JSON spells NUL only as an escape (a raw control character is a syntax error): look for it
    # at C speed before walking the document.
    if b"\\u0000" not in body:
        return None
    found = _first_match(value, _NUL)
    if found is None:
        return None
    return BodyRefusal(400, "validation_error", "null_characters_not_allowed", NUL_REFUSAL_DETAIL, found[0])


def is_depth_error(error: orjson.JSONDecodeError) -> bool:
    """orjson stops at 1024 levels; its message is the only way to tell that from a syntax error."""
    return "depth" in str(error) or "recursion" in str(error).lower()


class BodyTooLarge(Exception):
    pass


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one before we see it
    return None


async def read_capped(scope: Scope, receive: Receive) -> bytes | None:
    """The whole body, or None when the client disconnected first; raises BodyTooLarge as soon as
    the declared length or the bytes received so far pass the cap (the rest is never read)."""
    length = declared_length(scope)
    if length is not None and length > MAX_BODY_BYTES:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _is_json(scope: Scope) -> bool:
    # FastAPI parses application/json and */*+json; api/deps.py's key lookup any type naming json.
    return any(name == b"content-type" and b"json" in value.lower() for name, value in scope["headers"])


class BodyGuard:
    """Every request the FastAPI stack serves: its body read here under the cap, JSON checked for
    depth and lone surrogates, then handed on whole (FastAPI reads it from the replayed message)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await read_capped(scope, receive)
        except BodyTooLarge:
            await _refuse(send, TOO_LARGE_REFUSAL)
            return
        if body is None:
            return  # the client went away; nothing to answer
        refusal = json_refusal(body) if body and _is_json(scope) else None
        if refusal is not None:
            await _refuse(send, refusal)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, as the server reports them
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _refuse(send: Send, refusal: BodyRefusal) -> None:
    content = refusal.body()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
    await send({"type": "http.response.body", "body": content})
