"""docker-compose.yml, the Dockerfile and the proxy's config, checked as files: no Docker
engine runs here, so this is what stands between them and a typo."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from infrastructure.cli.main import parser
from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def setting_names() -> set[str]:
    return {str(f.validation_alias) for f in Settings.model_fields.values()}


def cli_commands() -> set[str]:
    sub = next(a for a in parser()._actions if a.dest == "command")
    return set(sub.choices or {})


def test_the_shape_has_every_service(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker", "proxy"}


def test_every_app_command_is_a_coursereg_command(services: dict[str, Any]) -> None:
    commands = cli_commands()
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert command[0] in commands, (name, command)
        parser().parse_args(command)  # its options parse too


def test_app_configuration_is_only_settings_from_the_environment(
    services: dict[str, Any],
) -> None:
    known = setting_names()
    for name in APP_SERVICES:
        service = services[name]
        unknown = set(service["environment"]) - known
        assert not unknown, f"{name} sets variables Settings does not read: {unknown}"
        assert "volumes" not in service and "env_file" not in service, name
        assert {"DATABASE_URL", "REDIS_URL", "COURSEREG_JWT_SECRET"} <= set(service["environment"])


def test_secrets_come_from_the_environment_not_the_file(services: dict[str, Any]) -> None:
    env = services["api"]["environment"]
    assert env["COURSEREG_JWT_SECRET"].startswith("${COURSEREG_JWT_SECRET:?")
    assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${")


def test_api_and_worker_run_two_replicas_after_the_migration(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        assert services[name]["deploy"]["replicas"] == 2
        needs = services[name]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert needs["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_healthchecks_hit_ready(services: dict[str, Any]) -> None:
    for name in ("api", "proxy"):
        test = " ".join(services[name]["healthcheck"]["test"])
        assert re.search(r"http://127\.0\.0\.1(:8000)?/ready", test), (name, test)
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "ping" in services["redis"]["healthcheck"]["test"]
    worker = " ".join(services["worker"]["healthcheck"]["test"])
    assert "9100/metrics" in worker
    assert services["worker"]["environment"]["COURSEREG_WORKER_METRICS_PORT"] == "9100"


def test_redis_keeps_every_seat(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=True))
    assert options["--appendonly"] == "yes"
    assert options["--appendfsync"] == "everysec"
    assert options["--maxmemory-policy"] == "noeviction"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])


def test_postgres_keeps_its_data_in_a_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert "pgdata:/var/lib/postgresql/data" in postgres["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata"}


def test_shutdown_grace_outlasts_the_api_drain(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        assert int(services[name]["stop_grace_period"].rstrip("s")) > 20


def test_the_proxy_passes_websockets_to_the_api() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server\s+api:8000", config)
    assert "proxy_pass http://api;" in config
    assert "proxy_http_version 1.1;" in config
    assert "proxy_set_header Upgrade $http_upgrade;" in config
    assert "proxy_set_header Connection $connection_upgrade;" in config
    assert "proxy_set_header X-Request-ID $rid;" in config
    assert config.count("{") == config.count("}")


def test_the_proxy_config_is_mounted(services: dict[str, Any]) -> None:
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]
    assert (ROOT / "deploy" / "nginx.conf").exists()


def test_the_image_is_slim_multi_stage_and_unprivileged() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert len(stages) >= 2, "multi-stage"
    assert all("slim" in image for image in stages)
    assert "COPY --from=build" in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["coursereg"\]', dockerfile, re.MULTILINE)
    for copied in re.findall(r"^COPY (?!--)(\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / copied).exists(), copied


def test_the_image_gets_every_package_of_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    build = dockerfile.split("\nFROM ")[1]  # the build stage
    copied = {c.rstrip("/") for c in re.findall(r"^COPY (?!--)(\S+)", build, re.MULTILINE)}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied
    assert "pyproject.toml" in copied
    # The project's runtime dependencies only: no extras (test tools, embedded servers).
    assert re.search(r"^RUN pip wheel [^\[\n]*--wheel-dir /wheels \.$", build, re.MULTILINE)


def test_the_api_sees_client_addresses_through_the_proxy(services: dict[str, Any]) -> None:
    """Behind nginx every request comes from its address: without trusting its
    X-Forwarded-For the per-address rate limit would hold back all students as one."""
    assert services["api"]["environment"]["FORWARDED_ALLOW_IPS"] == "*"
    assert "ports" not in services["api"], "only the proxy may reach the API"
