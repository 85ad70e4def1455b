"""docker-compose.yml and the Dockerfile, checked without Docker (this machine has no Compose, so
its interpolation rules are applied here): the production stack must be configured through the
variables settings.py reads, run the documented commands, register every search attribute the
workflows upsert (a missing one leaves workflows stuck), and refuse to start without a database
password."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from settings import ENVIRONMENT_VARIABLES, load_settings
from workflows.search_attributes import ALL_KEYS, cli_flags

ROOT = Path(__file__).resolve().parents[1]
FLAGSHIP_SERVICES = ("migrate", "api", "worker")
COMMANDS = {
    "migrate": ["python", "-m", "db", "upgrade"],
    "api": ["python", "-m", "api"],
    "worker": ["python", "worker.py"],
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


# The one variable an operator must set (see the file's header).
ENV = {"POSTGRES_PASSWORD": "s3cret-from-env"}
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class ComposeRefuses(Exception):
    """What `docker compose` does on `${NAME:?message}` with NAME unset or empty: it exits, saying so."""


def interpolate(value: str, env: dict[str, str] = ENV) -> str:
    """Compose's substitution: `${NAME:-default}`, `${NAME:?error}`, `${NAME}`; `$$` is `$`."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2) or "", match.group(3) or ""
        value = env.get(name)
        unset = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("?") and unset:
            raise ComposeRefuses(f"required variable {name} is missing a value: {argument}")
        return argument if unset and operator.endswith("-") else (value or "")

    return _VARIABLE.sub(substitute, value).replace("$$", "$")


def environment(service: dict[str, Any], env: dict[str, str] = ENV) -> dict[str, str]:
    variables = service.get("environment", {})
    assert isinstance(variables, dict), "environment as a mapping, so the anchor can be shared"
    return {name: interpolate(str(value), env) for name, value in variables.items()}


def script(service: dict[str, Any]) -> str:
    command = service["command"]
    return interpolate(command if isinstance(command, str) else "\n".join(command))


def test_every_part_of_the_stack_is_there(compose: dict[str, Any]) -> None:
    expected = {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "prometheus",
        *FLAGSHIP_SERVICES,
    }
    assert expected <= set(services(compose))
    assert services(compose)["postgres"]["image"] == "postgres:16"
    assert interpolate(services(compose)["temporal"]["image"]).startswith("temporalio/server:")
    assert interpolate(services(compose)["temporal-ui"]["image"]).startswith("temporalio/ui:")
    assert any(port.endswith(":8080:8080") for port in services(compose)["temporal-ui"]["ports"])


@pytest.mark.parametrize("name", FLAGSHIP_SERVICES)
def test_flagship_services_set_only_variables_settings_reads(compose: dict[str, Any], name: str) -> None:
    env = environment(services(compose)[name])
    assert set(env) <= set(ENVIRONMENT_VARIABLES), set(env) - set(ENVIRONMENT_VARIABLES)
    assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["HOST"] == "0.0.0.0"
    assert services(compose)[name]["build"] == "."


@pytest.mark.parametrize("name", FLAGSHIP_SERVICES)
def test_flagship_services_use_the_postgres_service(compose: dict[str, Any], name: str) -> None:
    url = make_url(environment(services(compose)[name])["DATABASE_URL"])
    postgres = environment(services(compose)["postgres"])
    assert url.drivername == "postgresql+psycopg"
    assert (url.host, url.port, url.database) == ("postgres", 5432, postgres["POSTGRES_DB"])
    assert (url.username, url.password) == (postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"])


@pytest.mark.parametrize("name", ["postgres", "temporal-schema", "temporal", *FLAGSHIP_SERVICES])
def test_no_service_starts_without_a_database_password(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    for missing in ({}, {"POSTGRES_PASSWORD": ""}):
        with pytest.raises(ComposeRefuses, match="POSTGRES_PASSWORD"):
            environment(service, missing)
    assert ENV["POSTGRES_PASSWORD"] in "".join(environment(service).values())
    # No default anywhere: every mention of the variable is the refusing form.
    mentions = re.findall(r"\$\{POSTGRES_PASSWORD[^}]*\}", (ROOT / "docker-compose.yml").read_text())
    assert mentions and all(found.startswith("${POSTGRES_PASSWORD:?") for found in mentions)


@pytest.mark.parametrize("name", FLAGSHIP_SERVICES)
def test_flagship_services_run_the_documented_commands(compose: dict[str, Any], name: str) -> None:
    assert services(compose)[name]["command"] == COMMANDS[name]


def test_every_search_attribute_is_created_with_its_type(compose: dict[str, Any]) -> None:
    setup = script(services(compose)["temporal-setup"])
    created = dict(re.findall(r"search-attribute create .*--name (\w+) --type (\w+)", setup))
    expected = dict(flag.split("=") for flag in cli_flags()[1::2])
    assert created == expected
    assert set(created) == {key.name for key in ALL_KEYS}
    assert "temporal operator namespace create" in setup
    namespace = environment(services(compose)["temporal-setup"])["TEMPORAL_NAMESPACE"]
    assert namespace == environment(services(compose)["api"])["TEMPORAL_NAMESPACE"]


def test_temporal_schema_is_set_up_on_postgres(compose: dict[str, Any]) -> None:
    schema = services(compose)["temporal-schema"]
    assert interpolate(schema["image"]).startswith("temporalio/admin-tools:")
    assert environment(schema)["SQL_PLUGIN"] == "postgres12"
    for database in ("temporal", "temporal_visibility"):
        assert f"--db {database} update-schema" in script(schema)
    assert environment(services(compose)["temporal"])["DB"] == "postgres12"


def test_start_order_waits_for_health_and_one_shot_steps(compose: dict[str, Any]) -> None:
    def condition(service: str, dependency: str) -> str:
        value = services(compose)[service]["depends_on"][dependency]["condition"]
        assert isinstance(value, str)
        return value

    assert "healthcheck" in services(compose)["postgres"]
    assert "healthcheck" in services(compose)["temporal"]
    assert condition("temporal-schema", "postgres") == "service_healthy"
    assert condition("temporal", "temporal-schema") == "service_completed_successfully"
    assert condition("temporal-setup", "temporal") == "service_healthy"
    assert condition("migrate", "postgres") == "service_healthy"
    for name in ("api", "worker"):
        assert condition(name, "migrate") == "service_completed_successfully"
        assert condition(name, "temporal-setup") == "service_completed_successfully"


def test_prometheus_scrapes_the_api_and_the_worker(compose: dict[str, Any]) -> None:
    prometheus = services(compose)["prometheus"]
    assert interpolate(prometheus["image"]).startswith("prom/prometheus:")
    mounted = {volume.split(":")[0]: volume.split(":")[1] for volume in prometheus["volumes"]}
    assert mounted["./deploy/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: (job.get("metrics_path", "/metrics"), target)
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    api_port = environment(services(compose)["api"])["PORT"]
    worker_port = environment(services(compose)["worker"])["WORKER_METRICS_PORT"]
    assert set(targets.values()) == {("/metrics", f"api:{api_port}"), ("/metrics", f"worker:{worker_port}")}
    assert any(port.startswith("127.0.0.1:") for port in prometheus["ports"])


def test_the_image_installs_the_project_without_dev_extras() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"\bpip install \.(?:\s|$)", dockerfile)
    assert "[dev]" not in dockerfile


# ---- EVENTS_BACKEND=clickhouse (docker-compose.clickhouse.yml on top of docker-compose.yml) ----


@pytest.fixture(scope="module")
def clickhouse_override() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.clickhouse.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_clickhouse_runs_behind_a_profile_with_a_volume(compose: dict[str, Any]) -> None:
    clickhouse = services(compose)["clickhouse"]
    assert interpolate(clickhouse["image"]).startswith("clickhouse/clickhouse-server:")
    assert clickhouse["profiles"] == ["clickhouse"]  # `docker compose up` alone keeps the embedded default
    mounts = dict(volume.split(":") for volume in clickhouse["volumes"])
    assert mounts["clickhouse-data"] == "/var/lib/clickhouse" and "clickhouse-data" in compose["volumes"]
    assert "healthcheck" in clickhouse
    assert all(port.startswith("127.0.0.1:") for port in clickhouse["ports"])
    for name in FLAGSHIP_SERVICES:  # without the override, events stay in PostgreSQL
        assert "EVENTS_BACKEND" not in environment(services(compose)[name])


@pytest.mark.parametrize("name", FLAGSHIP_SERVICES)
def test_the_override_points_flagship_at_the_clickhouse_service(
    compose: dict[str, Any], clickhouse_override: dict[str, Any], name: str
) -> None:
    override = services(clickhouse_override)[name]
    merged = environment(services(compose)[name]) | environment(override)
    assert set(merged) <= set(ENVIRONMENT_VARIABLES), set(merged) - set(ENVIRONMENT_VARIABLES)
    settings = load_settings(merged)
    assert settings.events_backend == "clickhouse" and settings.clickhouse_ttl_days is None
    url = urlsplit(merged["CLICKHOUSE_URL"])
    server = environment(services(compose)["clickhouse"])
    assert (url.scheme, url.hostname, url.port) == ("http", "clickhouse", 8123)
    assert (url.username, url.password) == (server["CLICKHOUSE_USER"], server["CLICKHOUSE_PASSWORD"])
    assert override["depends_on"]["clickhouse"]["condition"] == "service_healthy"
