"""Regexes from users run in linear time (RE2): patterns RE2 cannot compile are refused when a flag,
an experiment's metrics or exposure criteria, or a saved metric is saved (400 naming the pattern and
why, `attr` the field), and a catastrophic-backtracking pattern stalls neither /flags nor anyone else."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from api.app import create_app
from db.bootstrap import Credentials
from settings import Settings
from tests.support.api_client import ApiClient
from tests.support.server import serve

HOSTILE = "^(a+)+$"  # exponential on a backtracking engine: 2^n steps for n "a"s and a mismatch
BACKREFERENCE = r"(a)\1"  # Python's re compiles it; RE2 (and Rust's regex) cannot


def regex_filter(pattern: str) -> dict[str, Any]:
    return {"key": "email", "operator": "regex", "value": pattern, "type": "person"}


def flag_filters(pattern: str) -> dict[str, Any]:
    return {"groups": [{"properties": [regex_filter(pattern)], "rollout_percentage": 100}]}


def metric(pattern: str) -> dict[str, Any]:
    source = {"kind": "EventsNode", "event": "purchase", "properties": [regex_filter(pattern)]}
    return {"kind": "ExperimentMetric", "metric_type": "mean", "source": source}


def refused(pattern: str, reason: str, attr: str) -> dict[str, Any]:
    return {
        "type": "validation_error",
        "code": "invalid_regex",
        "detail": f'Invalid regular expression "{pattern}": {reason}. '
        "Patterns use RE2 syntax (linear time: no backreferences or lookaround).",
        "attr": attr,
    }


async def test_flags_with_a_pattern_re2_cannot_compile_are_refused(api: ApiClient) -> None:
    body = {"key": "backref", "filters": flag_filters(BACKREFERENCE)}
    r = await api.post(api.project("feature_flags/"), body)
    assert r.status_code == 400, r.text
    assert r.json() == refused(BACKREFERENCE, r"invalid escape sequence: \1", "filters")

    created = await api.post(api.project("feature_flags/"), {"key": "ok", "filters": flag_filters("^a")})
    assert created.status_code == 201, created.text
    flag_id = created.json()["id"]
    r = await api.patch(api.project(f"feature_flags/{flag_id}/"), {"filters": flag_filters("(?=a)")})
    assert r.status_code == 400, r.text
    assert r.json() == refused("(?=a)", "invalid perl operator: (?=", "filters")
    # A hostile pattern is valid RE2: it is stored, and runs in linear time.
    r = await api.patch(api.project(f"feature_flags/{flag_id}/"), {"filters": flag_filters(HOSTILE)})
    assert r.status_code == 200, r.text


async def test_metrics_exposure_criteria_and_saved_metrics_refuse_them_too(api: ApiClient) -> None:
    base = {"name": "Regex", "feature_flag_key": "regex-exp", "allow_unknown_events": True}
    r = await api.post(api.project("experiments/"), base | {"metrics": [metric("(?<=a)b")]})
    assert r.status_code == 400, r.text
    assert r.json() == refused("(?<=a)b", "invalid perl operator: (?<=", "metrics")
    r = await api.post(api.project("experiments/"), base | {"metrics_secondary": [metric("(")]})
    assert r.status_code == 400, r.text
    assert r.json() == refused("(", "missing ): (", "metrics_secondary")

    exposure = {
        "kind": "ExperimentEventExposureConfig",
        "event": "$pageview",
        "properties": [regex_filter(BACKREFERENCE)],
    }
    r = await api.post(
        api.project("experiments/"), base | {"exposure_criteria": {"exposure_config": exposure}}
    )
    assert r.status_code == 400, r.text
    assert r.json() == refused(BACKREFERENCE, r"invalid escape sequence: \1", "exposure_criteria")

    saved = {"name": "Backref", "query": metric(BACKREFERENCE)}
    r = await api.post(api.project("experiment_saved_metrics/"), saved)
    assert r.status_code == 400, r.text
    assert r.json() == refused(BACKREFERENCE, r"invalid escape sequence: \1", "query")


@pytest.fixture
def base_url(settings: Settings, credentials: Credentials) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


def test_a_hostile_pattern_does_not_stall_flags(base_url: str, credentials: Credentials) -> None:
    """On a backtracking engine the first request below runs for hours inside the event loop, and
    every other caller of the process waits with it; the timeouts turn that into a failure."""
    admin = {"Authorization": f"Bearer {credentials.personal_api_key}"}
    with httpx.Client(base_url=base_url, timeout=10) as http:
        path = f"/api/projects/{credentials.project_id}/feature_flags/"
        for key, filters in (("hostile", flag_filters(HOSTILE)), ("plain", flag_filters(""))):
            r = http.post(path, json={"key": key, "filters": filters}, headers=admin)
            assert r.status_code == 201, r.text

        def ask(email: str) -> dict[str, Any]:
            body = {
                "api_key": credentials.project_api_token,
                "distinct_id": "user-1",
                "person_properties": {"email": email},
            }
            r = http.post("/flags/?v=2", json=body)
            assert r.status_code == 200, r.text
            return dict(r.json()["featureFlags"])

        deadline = time.monotonic() + 5
        while set(ask("a")) != {"hostile", "plain"}:  # the cache picks the flags up on its poll
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with ThreadPoolExecutor(2) as pool:
            hostile = pool.submit(ask, "a" * 64 + "!")
            bystander = pool.submit(ask, "someone@example.com")
            assert hostile.result(timeout=20) == {"hostile": False, "plain": True}
            assert bystander.result(timeout=20) == {"hostile": False, "plain": True}
        assert ask("a" * 64) == {"hostile": True, "plain": True}
