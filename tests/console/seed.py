"""Data for the console's browser tests and bench/console.py, written through the public API only:
experiments over REST, events through `/batch/` (as the SDKs send them), daily results through
`recalculate_timeseries`."""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

PURCHASES = {
    "kind": "ExperimentMetric",
    "metric_type": "mean",
    "name": "Purchases per user",
    "source": {"kind": "EventsNode", "event": "purchase"},
}
CHECKOUT = {
    "kind": "ExperimentMetric",
    "metric_type": "funnel",
    "name": "Checkout conversion",
    "series": [
        {"kind": "EventsNode", "event": "checkout_started"},
        {"kind": "EventsNode", "event": "purchase"},
    ],
}
REVENUE_PER_VIEW = {
    "kind": "ExperimentMetric",
    "metric_type": "ratio",
    "name": "Revenue per pageview",
    "numerator": {"kind": "EventsNode", "event": "purchase", "math": "sum", "math_property": "amount"},
    "denominator": {"kind": "EventsNode", "event": "pageview"},
}
METRICS = [PURCHASES, CHECKOUT, REVENUE_PER_VIEW]


class Api:
    """The bootstrap user's view of a running Flagship, over real HTTP."""

    def __init__(self, base_url: str, key: str, project_token: str, project_id: int = 1) -> None:
        self.http = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30.0, trust_env=False
        )
        self.token = project_token
        self.project_id = project_id

    def path(self, rest: str) -> str:
        return f"/api/projects/{self.project_id}/{rest.lstrip('/')}"

    def call(
        self, method: str, rest: str, json: Any = None, expect: int | tuple[int, ...] = (200, 201)
    ) -> Any:
        response = self.http.request(method, self.path(rest), json=json)
        wanted = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in wanted, f"{method} {rest}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def experiment(self, **body: Any) -> dict[str, Any]:
        return dict(self.call("POST", "experiments/", {"allow_unknown_events": True, **body}, expect=201))

    def capture(self, events: list[dict[str, Any]], chunk: int = 2000) -> None:
        for i in range(0, len(events), chunk):
            response = self.http.post("/batch/", json={"api_key": self.token, "batch": events[i : i + chunk]})
            assert response.status_code == 200, response.text

    def recalculate_all(self, experiment: dict[str, Any], timeout: float = 180.0) -> None:
        """Start every metric's backfill and wait until each has finished."""
        for metric in experiment["metrics"]:
            body = {"metric": metric, "fingerprint": metric["fingerprint"]}
            self.call("POST", f"experiments/{experiment['id']}/recalculate_timeseries/", body)
        deadline = time.monotonic() + timeout
        for metric in experiment["metrics"]:
            while True:
                params = f"metric_uuid={metric['uuid']}&fingerprint={metric['fingerprint']}"
                series = self.call("GET", f"experiments/{experiment['id']}/timeseries_results/?{params}")
                if series["recalculation_status"] is None and series["status"] != "pending":
                    break
                assert time.monotonic() < deadline, f"recalculation did not finish: {series['status']}"
                time.sleep(0.5)


def _variant(user: str, variants: tuple[str, ...]) -> str:
    digest = int(hashlib.sha256(user.encode()).hexdigest()[:8], 16)
    return variants[digest % len(variants)]


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def traffic(flag_key: str, start: datetime, users: int, seed: int = 7) -> list[dict[str, Any]]:
    """`users` people exposed evenly since `start`; test converts and spends a little more."""
    rng = random.Random(seed)
    now = datetime.now(UTC) - timedelta(minutes=2)
    span = (now - start).total_seconds()
    events: list[dict[str, Any]] = []
    for i in range(users):
        user = f"{flag_key}-user-{i}"
        variant = _variant(user, ("control", "test"))
        first = start + timedelta(seconds=span * (i + rng.random()) / users)
        lift = 1.25 if variant == "test" else 1.0

        def event(
            name: str,
            after_s: float,
            props: dict[str, Any] | None = None,
            who: str = user,
            at: datetime = first,
        ) -> None:
            when = min(at + timedelta(seconds=after_s), now)
            events.append(
                {"event": name, "distinct_id": who, "timestamp": _stamp(when), "properties": props or {}}
            )

        event("$feature_flag_called", 0, {"$feature_flag": flag_key, "$feature_flag_response": variant})
        for k in range(rng.randint(1, 4)):
            event("pageview", 60 * (k + 1))
        if rng.random() < 0.55:
            event("checkout_started", 400)
            if rng.random() < 0.45 * lift:
                event("purchase", 600, {"amount": round(rng.uniform(10, 60) * lift, 2)})
    return events


def seeded_experiment(api: Api, name: str, flag_key: str, days: int = 30, users: int = 600) -> dict[str, Any]:
    """An experiment launched `days` ago with the three metrics, its traffic captured."""
    start = (datetime.now(UTC) - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    experiment = api.experiment(
        name=name, feature_flag_key=flag_key, start_date=_stamp(start), metrics=METRICS
    )
    api.capture(traffic(flag_key, start, users))
    return experiment
