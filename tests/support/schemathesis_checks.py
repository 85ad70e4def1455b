"""The check tests/api/test_schemathesis.py runs schemathesis with (loaded by the CLI through
SCHEMATHESIS_HOOKS): no 5xx, except the 503s Flagship answers on purpose when something it depends on
is busy or down (a worker, the database, the capture queue), which say so in PostHog's shape."""

from __future__ import annotations

from typing import Any

import schemathesis


def _deliberate_unavailable(response: Any) -> bool:
    if response.status_code != 503:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("type") == "server_error"
        and body.get("code") == "service_unavailable"
    )


@schemathesis.check
def no_undocumented_server_error(ctx: Any, response: Any, case: Any) -> None:
    if response.status_code >= 500 and not _deliberate_unavailable(response):
        raise AssertionError(f"{response.status_code} answer: {response.text[:1000]}")
