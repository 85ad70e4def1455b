"""`POST /flags` and `POST /decide`: remote flag evaluation for the PostHog SDKs (posthog-clients.md §2).

The hot path: plain Starlette routes (no dependency injection, no pydantic), definitions from the
in-memory cache (api/flag_cache.py), orjson both ways, no database access.

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
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from api.capture_parse import PayloadError, body_token, decode_body, query_token
from api.flag_cache import FlagCache, ProjectFlags
from domain.flag_evaluation import FlagResult, evaluate_flags

NO_TOKEN = "No API token provided. Please include a valid API token in your request."
BAD_TOKEN = "The provided API key is invalid or has expired. Please check your API key and try again."
MISSING_DISTINCT_ID = "The distinct_id field is missing from the request. Please include a valid identifier."
EMPTY_DISTINCT_ID = "The distinct_id field cannot be empty. Please provide a valid identifier."


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def error_response(status: int, type_: str, code: str, detail: str, attr: str | None = None) -> Response:
    return json_response({"type": type_, "code": code, "detail": detail, "attr": attr}, status)


class FlagsRequestError(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
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


def _project(request: Request, payload: Any) -> ProjectFlags:
    token = body_token(payload) or query_token(request.query_params)
    if token is None:
        raise FlagsRequestError(error_response(401, "authentication_error", "not_authenticated", NO_TOKEN))
    cache: FlagCache = request.app.state.flag_cache
    project = cache.project(token)
    if project is None:
        if not cache.loaded:
            detail = "Flag definitions are loading. Try again shortly."
            raise FlagsRequestError(error_response(503, "server_error", "service_unavailable", detail))
        raise FlagsRequestError(
            error_response(401, "authentication_error", "authentication_failed", BAD_TOKEN)
        )
    return project


async def _payload(request: Request) -> dict[str, Any]:
    headers = request.headers
    try:
        payload = decode_body(
            await request.body(),
            content_encoding=headers.get("content-encoding"),
            content_type=headers.get("content-type"),
            compression=request.query_params.get("compression"),
        )
    except PayloadError as error:
        raise FlagsRequestError(error_response(400, "invalid_request", error.code, error.detail)) from None
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


def _detail(result: FlagResult, meta: tuple[int, int | None, str]) -> dict[str, Any]:
    return {
        "key": result.key,
        "enabled": result.enabled,
        "variant": result.variant,
        "reason": {
            "code": result.reason_code,
            "condition_index": result.condition_index,
            "description": result.description,
        },
        "metadata": {"id": meta[0], "version": meta[1], "description": meta[2], "payload": result.payload},
    }


def _envelope() -> dict[str, Any]:
    return {
        "errorsWhileComputingFlags": False,
        "requestId": str(uuid.uuid4()),
        "evaluatedAt": int(time.time() * 1000),
    }


def _flat(results: dict[str, FlagResult], *, keep_false: bool) -> dict[str, Any]:
    values = {key: r.value for key, r in results.items() if keep_false or r.enabled}
    payloads = {key: r.payload for key, r in results.items() if r.enabled and r.payload is not None}
    return {"featureFlags": values, "featureFlagPayloads": payloads}


def render_detailed(project: ProjectFlags, results: dict[str, FlagResult]) -> dict[str, Any]:
    meta = project.metadata
    flags = {key: _detail(result, meta[key]) for key, result in results.items()}
    return {"flags": flags, **_flat(results, keep_false=True), **_envelope()}


def render_legacy(project: ProjectFlags, results: dict[str, FlagResult]) -> dict[str, Any]:
    return {**_flat(results, keep_false=True), **_envelope()}


def render_decide_flat(project: ProjectFlags, results: dict[str, FlagResult]) -> dict[str, Any]:
    # Older formats leave disabled flags out (posthog-clients.md §2.5).
    return {**_flat(results, keep_false=False), **_envelope()}


def render_decide_keys(project: ProjectFlags, results: dict[str, FlagResult]) -> dict[str, Any]:
    return {"featureFlags": [key for key, r in results.items() if r.enabled], **_envelope()}


Renderer = Callable[[ProjectFlags, dict[str, FlagResult]], dict[str, Any]]


def _version(request: Request) -> int | None:
    raw = request.query_params.get("v")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def flags_renderer(request: Request) -> Renderer:
    version = _version(request)
    return render_legacy if version is None or version < 2 else render_detailed


def decide_renderer(request: Request) -> Renderer:
    version = _version(request)
    if version is None:
        return render_legacy
    if version >= 4:
        return render_detailed
    return render_decide_flat if version >= 2 else render_decide_keys


async def _answer(request: Request, renderer: Renderer) -> Response:
    try:
        payload = await _payload(request)
        project = _project(request, payload)
        distinct_id = _distinct_id(payload)
    except FlagsRequestError as error:
        return error.response
    return json_response(renderer(project, _evaluate(project, payload, distinct_id)))


async def flags(request: Request) -> Response:
    if request.method == "GET":
        # Upstream answers a GET with an empty, well-formed evaluation.
        return json_response({"flags": {}, "featureFlags": {}, "featureFlagPayloads": {}, **_envelope()})
    return await _answer(request, flags_renderer(request))


async def decide(request: Request) -> Response:
    return await _answer(request, decide_renderer(request))


def lean_router(*routes: tuple[str, Callable[[Request], Any], list[str]]) -> APIRouter:
    """Plain Starlette routes (no dependency injection) under both spellings of each path: SDKs disagree
    about the trailing slash and a redirect would drop the POST body."""
    router = APIRouter()
    for path, endpoint, methods in routes:
        for spelling in (path, path.rstrip("/")):
            router.add_route(spelling, endpoint, methods=methods, include_in_schema=False)
    return router


router = lean_router(("/flags/", flags, ["GET", "POST"]), ("/decide/", decide, ["POST"]))
