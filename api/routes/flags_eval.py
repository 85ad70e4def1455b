"""`POST /flags` and `POST /decide`: remote flag evaluation for the PostHog SDKs (posthog-clients.md §2).

The hot path: served by the ASGI fast path (api/sdk_asgi.py), definitions from the in-memory cache
(api/flag_cache.py), no database access, no pydantic. Answers are assembled from JSON fragments
pre-rendered once per distinct evaluation result, since a flag has only a handful of them.

Response shapes: `/flags?v=2|4` and `/decide?v=4` give the detailed `flags` map (plus the flat
`featureFlags`/`featureFlagPayloads` pair every SDK generation reads); `/flags` without `v` gives the
legacy pair; `/decide?v=2|3` the flat map of enabled flags, `v=1` a list of enabled keys.

Deliberate difference from upstream: the distinct id is not truncated to 200 characters, so remote
evaluation always agrees with the SDK's local evaluation, which hashes the full id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import orjson

from api.flag_cache import FlagCache, FlagMetadata, ProjectFlags
from api.sdk_asgi import Routes, SdkRequest, SdkResponse, bearer_token, error_response
from api.sdk_payload import PayloadError, body_token, decode_body, query_token
from domain.flag_evaluation import FlagResult, evaluate_flags

NO_TOKEN = "No API token provided. Please include a valid API token in your request."
BAD_TOKEN = "The provided API key is invalid or has expired. Please check your API key and try again."
MISSING_DISTINCT_ID = "The distinct_id field is missing from the request. Please include a valid identifier."
EMPTY_DISTINCT_ID = "The distinct_id field cannot be empty. Please provide a valid identifier."
# Fragments are cached per result object; more distinct results than this means the cache is not helping.
MAX_FRAGMENTS = 50_000


class FlagsRequestError(Exception):
    def __init__(self, response: SdkResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(payload: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = payload.get(name)
        if value is not None:
            return value
    return None


def _distinct_id(payload: Mapping[str, Any]) -> str:
    raw = _first(payload, "distinct_id", "$distinct_id")
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise FlagsRequestError(
            error_response(400, "validation_error", "required", MISSING_DISTINCT_ID, "distinct_id")
        )
    text = raw if isinstance(raw, str) else str(raw)
    if not text:
        raise FlagsRequestError(
            error_response(400, "validation_error", "blank", EMPTY_DISTINCT_ID, "distinct_id")
        )
    return text


async def _project(request: SdkRequest, payload: Any) -> ProjectFlags:
    # Like the flags service, the token may also come as `Authorization: Bearer phc_…`.
    token = body_token(payload) or query_token(request.query) or bearer_token(request)
    if token is None:
        raise FlagsRequestError(error_response(401, "authentication_error", "not_authenticated", NO_TOKEN))
    cache: FlagCache = request.state.flag_cache
    project = cache.project(token)
    if project is not None:
        return project  # the hot path: no await beyond this function's own
    try:
        project = await cache.resolve(token)
    except Exception:
        detail = "Flag definitions could not be loaded. Try again shortly."
        raise FlagsRequestError(error_response(503, "server_error", "service_unavailable", detail)) from None
    if project is None:
        raise FlagsRequestError(
            error_response(401, "authentication_error", "authentication_failed", BAD_TOKEN)
        )
    return project


def _payload(request: SdkRequest) -> dict[str, Any]:
    try:
        payload = decode_body(
            request.body,
            content_encoding=request.headers.get("content-encoding"),
            content_type=request.headers.get("content-type"),
            compression=request.query.get("compression"),
        )
    except PayloadError as error:
        response = error_response(error.status, error.error_type, error.code, error.detail, error.attr)
        raise FlagsRequestError(response) from None
    if not isinstance(payload, dict):
        detail = "Failed to parse request: expected a JSON object."
        raise FlagsRequestError(error_response(400, "invalid_request", "parse_error", detail))
    return payload


def _evaluate(project: ProjectFlags, payload: dict[str, Any], distinct_id: str) -> dict[str, FlagResult]:
    if payload.get("disable_flags") is True:
        return {}
    keys = _first(payload, "flag_keys", "flag_keys_to_evaluate")
    flags = project.active
    if isinstance(keys, list):
        # A single-flag read (the SDK's get_feature_flag) evaluates only what was asked for.
        flags = tuple(
            project.by_key[k] for k in dict.fromkeys(keys) if isinstance(k, str) and k in project.by_key
        )
    device_id = _first(payload, "device_id", "$device_id")
    return evaluate_flags(
        flags,
        distinct_id,
        person_properties=_mapping(_first(payload, "person_properties", "$properties")),
        groups=_mapping(_first(payload, "groups", "$groups")),
        group_properties=_mapping(_first(payload, "group_properties", "$group_properties")),
        group_type_mapping=project.group_type_mapping,
        device_id=device_id if isinstance(device_id, str) else None,
    )


class Fragments(NamedTuple):
    """`"key":…` pieces of the three response maps for one evaluation result."""

    detail: bytes
    value: bytes
    payload: bytes | None  # None: not in featureFlagPayloads
    enabled: bool


def _fragments(result: FlagResult, meta: FlagMetadata) -> Fragments:
    detail = {
        "key": result.key,
        "enabled": result.enabled,
        "variant": result.variant,
        "reason": {
            "code": result.reason_code,
            "condition_index": result.condition_index,
            "description": result.description,
        },
        "metadata": {
            "id": meta.id,
            "version": meta.version,
            "description": meta.description,
            "payload": result.payload,
            "has_experiment": meta.has_experiment,
        },
    }
    key = orjson.dumps(result.key) + b":"
    payload = key + orjson.dumps(result.payload) if result.enabled and result.payload is not None else None
    return Fragments(key + orjson.dumps(detail), key + orjson.dumps(result.value), payload, result.enabled)


def fragments_of(project: ProjectFlags, results: dict[str, FlagResult]) -> list[Fragments]:
    """Keyed by the result object's identity: the engine hands out one shared object per distinct outcome.
    The cache keeps each object alive, so an id cannot be reused while its entry exists."""
    cache: dict[int, tuple[FlagResult, Fragments]] = project.render_cache
    out = []
    for result in results.values():
        entry = cache.get(id(result))
        if entry is None or entry[0] is not result:
            if len(cache) >= MAX_FRAGMENTS:
                cache.clear()
            entry = (result, _fragments(result, project.metadata[result.key]))
            cache[id(result)] = entry
        out.append(entry[1])
    return out


def _envelope() -> bytes:
    return b'"errorsWhileComputingFlags":false,"requestId":"%s","evaluatedAt":%d' % (
        str(uuid.uuid4()).encode(),
        int(time.time() * 1000),
    )


def _flat(parts: list[Fragments], *, keep_false: bool) -> bytes:
    values = b",".join(p.value for p in parts if keep_false or p.enabled)
    payloads = b",".join([p.payload for p in parts if p.payload is not None])
    return b'"featureFlags":{' + values + b'},"featureFlagPayloads":{' + payloads + b"}"


def render_detailed(project: ProjectFlags, results: dict[str, FlagResult]) -> bytes:
    parts = fragments_of(project, results)
    details = b",".join(p.detail for p in parts)
    return b'{"flags":{' + details + b"}," + _flat(parts, keep_false=True) + b"," + _envelope() + b"}"


def render_legacy(project: ProjectFlags, results: dict[str, FlagResult]) -> bytes:
    return b"{" + _flat(fragments_of(project, results), keep_false=True) + b"," + _envelope() + b"}"


def render_decide_flat(project: ProjectFlags, results: dict[str, FlagResult]) -> bytes:
    # Older formats leave disabled flags out (posthog-clients.md §2.5).
    return b"{" + _flat(fragments_of(project, results), keep_false=False) + b"," + _envelope() + b"}"


def render_decide_keys(project: ProjectFlags, results: dict[str, FlagResult]) -> bytes:
    keys = orjson.dumps([key for key, result in results.items() if result.enabled])
    return b'{"featureFlags":' + keys + b"," + _envelope() + b"}"


Renderer = Callable[[ProjectFlags, dict[str, FlagResult]], bytes]


def _version(request: SdkRequest) -> int | None:
    raw = request.query.get("v")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def flags_renderer(request: SdkRequest) -> Renderer:
    version = _version(request)
    return render_legacy if version is None or version < 2 else render_detailed


def decide_renderer(request: SdkRequest) -> Renderer:
    version = _version(request)
    if version is None:
        return render_legacy
    if version >= 4:
        return render_detailed
    return render_decide_flat if version >= 2 else render_decide_keys


async def _answer(request: SdkRequest, renderer: Renderer) -> SdkResponse:
    try:
        payload = _payload(request)
        project = await _project(request, payload)
        distinct_id = _distinct_id(payload)
    except FlagsRequestError as error:
        return error.response
    return SdkResponse(200, renderer(project, _evaluate(project, payload, distinct_id)))


async def flags(request: SdkRequest) -> SdkResponse:
    if request.method != "POST":
        # Upstream answers a GET with an empty, well-formed evaluation.
        return SdkResponse(
            200, b'{"flags":{},"featureFlags":{},"featureFlagPayloads":{},' + _envelope() + b"}"
        )
    return await _answer(request, flags_renderer(request))


async def decide(request: SdkRequest) -> SdkResponse:
    return await _answer(request, decide_renderer(request))


ROUTES: Routes = {
    "/flags": (frozenset({"GET", "POST"}), flags),
    "/decide": (frozenset({"POST"}), decide),
}
