"""Hostile request bodies get a clear 4xx, never a 500, on the REST API and the SDK routes alike, with
a key and without: lone surrogates (400, DRF's `surrogate_characters_not_allowed`), nesting past
128 levels (400), bodies past 20 MiB (413, refused while they stream in); the service stays up."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from api.app import create_app
from api.body_limits import too_deep
from db.bootstrap import Credentials
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.server import serve

MIB = 1024 * 1024
CAP = 20 * MIB
TOO_DEEP = {
    "type": "invalid_request",
    "code": "parse_error",
    "detail": "JSON parse error - nested deeper than 128 levels",
    "attr": None,
}
TOO_LARGE = {
    "type": "invalid_request",
    "code": "payload_too_large",
    "detail": "Request body is too large: the limit is 20 MiB.",
    "attr": None,
}
SDK_POSTS = ("/flags/?v=2", "/decide/?v=4", "/batch/", "/e/", "/i/v0/e/", "/i/v1/analytics/events")


def surrogate(attr: str | None, code_point: str = "D800") -> dict[str, Any]:
    return {
        "type": "validation_error",
        "code": "surrogate_characters_not_allowed",
        "detail": f"Surrogate characters are not allowed: U+{code_point}.",
        "attr": attr,
    }


async def post_raw(api: ApiClient, method: str, path: str, content: bytes, *, key: bool) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {api.key}"} if key else {})
    return await api.http.request(method, path, content=content, headers=headers)


async def test_lone_surrogates_are_refused_naming_the_field(api: ApiClient, credentials: Credentials) -> None:
    """Escaped (`\\ud800`) or raw (UTF-8 bytes of a surrogate, which Python's parser lets through)."""
    token = credentials.project_api_token
    flag = await api.post(api.project("feature_flags/"), {"key": "plain"})
    assert flag.status_code == 201, flag.text
    cases: list[tuple[str, str, str, str | None]] = [
        ("POST", api.project("experiments/"), '{"name": "A\\ud800", "feature_flag_key": "k"}', "name"),
        (
            "POST",
            api.project("experiments/"),
            '{"name": "n", "feature_flag_key": "k\\udfff"}',
            "feature_flag_key",
        ),
        (
            "POST",
            api.project("experiments/"),
            '{"name": "n", "feature_flag_key": "k", "parameters": {"feature_flag_variants": '
            '[{"key": "control"}, {"key": "t\\ud800"}]}}',
            "parameters__feature_flag_variants__1__key",
        ),
        ("PATCH", api.project(f"feature_flags/{flag.json()['id']}/"), '{"name": "\\ud800"}', "name"),
        ("POST", api.project("feature_flags/"), '{"key": "k", "filters": {"\\ud800": 1}}', "filters"),
        ("POST", api.project("experiment_holdouts/"), '{"name": "\\ud800", "filters": []}', "name"),
        ("POST", api.project("experiment_saved_metrics/"), '{"name": "\\ud800", "query": {}}', "name"),
        ("POST", api.project("query/"), '{"query": {"kind": "\\ud800"}}', "query__kind"),
        ("POST", "/api/personal_api_keys/", '{"label": "\\ud800"}', "label"),
        ("POST", "/api/projects/", '{"name": "\\ud800"}', "name"),
        ("POST", "/flags/?v=2", f'{{"api_key": "{token}", "distinct_id": "u\\ud800"}}', "distinct_id"),
        (
            "POST",
            "/batch/",
            f'{{"api_key": "{token}", "batch": [{{"event": "e\\ud800"}}]}}',
            "batch__0__event",
        ),
    ]
    for method, path, text, attr in cases:
        for key in (True, False):
            r = await post_raw(api, method, path, text.encode(), key=key)
            assert (r.status_code, r.json()) == (
                400,
                surrogate(attr, "DFFF" if "udfff" in text else "D800"),
            ), (
                path,
                text,
                key,
            )
    raw = '{"name": "\ud800"}'.encode("utf-8", "surrogatepass")
    r = await post_raw(api, "POST", "/api/projects/", raw, key=True)
    assert (r.status_code, r.json()) == (400, surrogate("name"))
    # A proper pair is one character, not a surrogate.
    r = await api.post("/api/projects/", {"name": "Launch \U0001f680"})
    assert r.status_code == 201 and r.json()["name"] == "Launch \U0001f680"


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize("kind", ["array", "object"])
async def test_deep_nesting_is_refused(api: ApiClient, credentials: Credentials, kind: str) -> None:
    for depth in (129, 2_000, 100_000):
        body = nested(depth, kind)
        for path in (api.project("experiments/"), api.project("feature_flags/"), "/api/projects/"):
            for key in (True, False):
                r = await post_raw(api, "POST", path, body, key=key)
                assert (r.status_code, r.json()) == (400, TOO_DEEP), (path, depth, key)
        for path in SDK_POSTS:
            r = await api.http.post(path, content=body, headers={"Content-Type": "application/json"})
            assert (r.status_code, r.json()) == (400, TOO_DEEP), (path, depth)
    # 128 levels (the outer object counts as one) are fine.
    token = credentials.project_api_token
    text = nested(127, kind).decode()
    r = await api.http.post(
        "/flags/?v=2", content=f'{{"deep": {text}, "api_key": "{token}", "distinct_id": "u"}}'
    )
    assert r.status_code == 200, r.text
    r = await api.post(
        api.project("feature_flags/"), {"key": "deep", "filters": {"x": orjson.loads(nested(126, kind))}}
    )
    assert r.status_code == 201, r.text
    assert (await api.get(api.project("feature_flags/"))).status_code == 200


# ----------------------------------------------------------------------------------------- over real HTTP


@pytest.fixture
def base_url(settings: Settings, credentials: Credentials) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


def _exchange(base_url: str, head: bytes, body: Iterator[bytes]) -> tuple[int, dict[str, Any]]:
    """Send the head and the body's pieces, then read the answer; the caller never finishes the
    request, so an answer proves the server refused it while the body was still coming."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=15) as sock:
        sock.sendall(head)
        for piece in body:
            sock.sendall(piece)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed without an answer: {received!r}"
            received += chunk
        header_block, _, rest = received.partition(b"\r\n\r\n")
        lines = header_block.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, "connection closed mid-answer"
            rest += chunk
    return int(lines[0].split()[1]), orjson.loads(rest[:length])


def _head(path: str, framing: str, *, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{auth}{framing}\r\n"
    ).encode()


def _chunks(total: int, size: int = MIB) -> Iterator[bytes]:
    """`total` bytes of chunked body, with no final chunk: the request never ends by itself."""
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        yield f"{piece:x}\r\n".encode() + b" " * piece + b"\r\n"
        sent += piece


def test_bodies_past_the_cap_are_refused_while_they_stream(base_url: str, credentials: Credentials) -> None:
    paths = [f"/api/projects/{credentials.project_id}/experiments/", "/api/projects/", "/batch/", "/flags/"]
    for path in paths:
        for key in (credentials.personal_api_key, None):
            # Declared too large: refused before a byte of the body is sent.
            head = _head(path, f"Content-Length: {CAP + 1}\r\n", key=key)
            assert _exchange(base_url, head, iter(())) == (413, TOO_LARGE), (path, key)
            # Streamed with no declared length: refused once the cap is passed, the request unfinished.
            head = _head(path, "Transfer-Encoding: chunked\r\n", key=key)
            assert _exchange(base_url, head, _chunks(CAP + 1)) == (413, TOO_LARGE), (path, key)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        assert http.get("/_health").status_code == 200
        headers = {"Authorization": f"Bearer {credentials.personal_api_key}"}
        assert http.get("/api/projects/", headers=headers).status_code == 200


async def test_nul_characters_are_refused_naming_the_field(api: ApiClient) -> None:
    """DRF's CharField refuses them; PostgreSQL could not store them (a 500 there before)."""
    cases = [
        (api.project("experiments/"), {"name": "a\u0000b", "feature_flag_key": "k"}, "name"),
        (
            api.project("feature_flags/"),
            {"key": "k", "filters": {"groups": [{"x": "\u0000"}]}},
            "filters__groups__0__x",
        ),
        ("/api/projects/", {"name": "n", "timezone": "\u0000"}, "timezone"),
    ]
    for path, body, attr in cases:
        r = await api.post(path, body)
        assert r.status_code == 400, r.text
        assert r.json() == {
            "type": "validation_error",
            "code": "null_characters_not_allowed",
            "detail": "Null characters are not allowed.",
            "attr": attr,
        }


async def test_a_flag_patch_with_nulls_is_a_400(api: ApiClient) -> None:
    """Found by schemathesis (tests/api/test_schemathesis.py): this body was a 500."""
    flag = await api.post(api.project("feature_flags/"), {"key": "nullable"})
    assert flag.status_code == 201, flag.text
    path = api.project(f"feature_flags/{flag.json()['id']}/")
    r = await api.patch(path, {"filters": None, "active": None, "deleted": None})
    assert r.status_code == 400, r.text
    assert r.json() == {
        "type": "validation_error",
        "code": "null",
        "detail": "This field may not be null.",
        "attr": "filters",
    }
    assert (await api.patch(path, {"deleted": True})).status_code == 200
    assert (await api.patch(path, {"name": "still deleted"})).status_code == 404
    r = await api.patch(path, {"deleted": False})
    assert r.status_code == 200 and r.json()["deleted"] is False


@pytest.mark.parametrize(
    ("prefix", "levels", "deep"),
    [
        ("", 128, False),
        ("", 129, True),
        ('"]]]]]]]]]]]]]]]]",', 129, True),  # closing brackets in a string do not hide the depth
        ('"[[[[[[[[[[[[[[[[",', 128, False),  # nor do opening ones add to it
        ('"a\\"]]]]]]]]]]]",', 129, True),  # an escaped quote does not end the string
        ('"a\\\\",', 129, True),  # an escaped backslash does not escape the quote after it
        ('"a\\\\\\"[[[[[[[[[",', 128, False),
    ],
)
def test_depth_is_measured_outside_strings(prefix: str, levels: int, deep: bool) -> None:
    document = f"[{prefix}" + "[" * (levels - 1) + "]" * (levels - 1) + "]"
    parsed = orjson.loads(document)  # a document the parser accepted, as too_deep is given
    assert parsed is not None
    assert too_deep(document.encode()) is deep
