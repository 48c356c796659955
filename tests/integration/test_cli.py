"""`coursereg`, the operator's command line, run as operators run it: a subprocess with its
configuration in the environment. Exit codes: 0 ok, 1 drift found or failure, 2 usage or
settings."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from typing import Any

import asyncpg
import jwt
import pytest

from infrastructure.cli.main import main
from infrastructure.redis.keys import shard_of
from infrastructure.settings import Settings
from tests.client import REGISTER
from tests.conftest import Api, Servers, _with_database
from tests.servers import free_port, replica_env

COMMANDS = (
    "serve",
    "worker",
    "migrate",
    "token",
    "run",
    "seed-demo",
    "reconcile",
    "rebuild-cache",
    "tickets",
    "import",
    "export",
)


def coursereg(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrastructure.cli", *args],
        env={**replica_env(settings, free_port()), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def acoursereg(
    settings: Settings, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(coursereg, settings, *args, **env)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert f"usage: coursereg {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["reconcile", "--bogus"], ["token", "--role", "dean", "--sub", "x"]],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REDIS_URL", "nonsense"),
        ("REDIS_URL", "redis://:6379/0"),
        ("DATABASE_URL", "mysql://root@localhost/coursereg"),
        ("COURSEREG_SHARDS", "zero"),
        ("COURSEREG_JWT_SECRET", "short"),
        ("PORT", "99999"),
        ("LOG_LEVEL", "LOUD"),
        ("LOG_FORMAT", "xml"),
    ],
)
def test_bad_settings_stop_serve_naming_the_variable_without_a_traceback(
    settings: Settings, variable: str, value: str
) -> None:
    done = coursereg(settings, "serve", **{variable: value})
    assert done.returncode == 2, done
    assert variable in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.startswith("coursereg: invalid settings:")


def test_token_prints_a_jwt_for_the_role(settings: Settings) -> None:
    student = uuid.uuid4()
    done = coursereg(settings, "token", "--role", "student", "--sub", str(student))
    assert done.returncode == 0, done.stderr
    claims = jwt.decode(done.stdout.strip(), settings.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(student)
    refused = coursereg(settings, "token", "--role", "student", "--sub", "not-an-id")
    assert refused.returncode == 2
    assert "UUID" in refused.stderr


async def test_migrate_creates_the_database_then_leaves_it_at_head(
    settings: Settings, servers: Servers
) -> None:
    name = f"coursereg_cli_{uuid.uuid4().hex[:8]}"
    url = _with_database(servers.admin_url, name)
    try:
        first = await acoursereg(settings, "migrate", DATABASE_URL=url)
        assert first.returncode == 0, first.stderr
        assert "created the database" in first.stdout
        again = await acoursereg(settings, "migrate", DATABASE_URL=url)
        assert again.returncode == 0, again.stderr
        assert "created" not in again.stdout and "at head" in again.stdout
    finally:
        connection = await asyncpg.connect(servers.admin_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


async def test_commands_fail_with_1_when_the_database_is_not_migrated(
    settings: Settings, servers: Servers
) -> None:
    name = f"coursereg_empty_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(servers.admin_url)
    await connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = _with_database(servers.admin_url, name)
        for command in ("seed-demo", "reconcile", "rebuild-cache"):
            done = await acoursereg(settings, command, DATABASE_URL=url)
            assert done.returncode == 1, (command, done)
            assert "coursereg migrate" in done.stderr and "Traceback" not in done.stderr
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


async def _counts(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        return {
            table: int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
            for table in ("semesters", "courses", "sections", "students")
        }
    finally:
        await connection.close()


async def _a_section(api: Api) -> Any:
    setups = await api.container.snapshot.setups()
    return max(setups, key=lambda s: s.total_seats)


async def test_seed_demo_loads_the_catalog_once_and_prints_how_to_use_it(
    api: Api, settings: Settings
) -> None:
    started = time.perf_counter()
    done = await acoursereg(settings, "seed-demo")
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert await _counts(settings.postgres) == {
        "semesters": 1,
        "courses": 50,
        "sections": 200,
        "students": 5000,
    }
    assert seconds < 30, f"seed-demo took {seconds:.1f}s"
    connection = await asyncpg.connect(settings.postgres)
    semester = await connection.fetchval("SELECT semester_id FROM semesters")
    await connection.close()
    assert "seeded" in done.stdout
    assert "/graphql" in done.stdout
    assert f"/dashboard?semester={semester}" in done.stdout
    token = next(line.strip() for line in done.stdout.splitlines() if line.startswith("  eyJ"))
    assert jwt.decode(token, settings.jwt_secret, algorithms=["HS256"])["role"] == "staff"

    setups = await api.container.snapshot.setups()
    sizes = {s.total_seats for s in setups}
    assert len(sizes) >= 5 and min(sizes) <= 5 and max(sizes) >= 100, sizes
    states = await api.container.seats.states([s.section_id for s in setups])
    assert all(state is not None and state.available_seats == state.total_seats for state in states)

    again = await acoursereg(settings, "seed-demo")
    assert again.returncode == 0 and "already there" in again.stdout
    assert (await _counts(settings.postgres))["students"] == 5000


async def test_reconcile_finds_drift_exits_1_and_repairs_it(api: Api, settings: Settings) -> None:
    assert (await acoursereg(settings, "seed-demo")).returncode == 0
    clean = await acoursereg(settings, "reconcile")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "200 sections checked, 0 drifted" in clean.stdout

    section = await _a_section(api)
    await api.container.redis.set(api.container.keys.section(section.section_id).seats, 1)
    drift = await acoursereg(settings, "reconcile")
    assert drift.returncode == 1
    assert f"section {section.section_id}: seat count 1" in drift.stdout

    repaired = await acoursereg(settings, "reconcile", "--repair")
    assert repaired.returncode == 0, repaired.stdout
    shard = shard_of(section.section_id, settings.shards)
    assert "1 drifted" in repaired.stdout
    assert f"shard(s) {shard} rebuilt from Postgres" in repaired.stdout
    assert "after the repair: 0 drifted" in repaired.stdout
    assert (await acoursereg(settings, "reconcile")).returncode == 0


async def _undrained(api: Api, section_id: uuid.UUID) -> uuid.UUID:
    """A registration answered ENROLLED whose change no worker has persisted yet (the app
    under test runs no worker): the student who got it."""
    student = next(
        s for s, status in await api.container.snapshot.student_statuses() if status == "active"
    )
    body = await api.gql(
        REGISTER,
        api.student_token(student),
        i={"studentId": str(student), "sectionIds": [str(section_id)]},
    )
    assert [r["outcome"] for r in body["data"]["register"]["results"]] == ["ENROLLED"], body
    return student


async def _enrolled_in_postgres(settings: Settings, student: uuid.UUID) -> int:
    connection = await asyncpg.connect(settings.postgres)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(*) FROM registrations WHERE student_id = $1 AND status = 'enrolled'",
                student,
            )
        )
    finally:
        await connection.close()


async def test_reconcile_waits_for_the_streams_and_rebuild_drains_them_itself(
    api: Api, settings: Settings
) -> None:
    """Finding 10: a rebuild under traffic neither refuses for lag that waiting clears nor
    reloads past what the streams still hold: its markers go down first, then it persists
    the streams up to that point itself (no worker runs here), then it reloads."""
    assert (await acoursereg(settings, "seed-demo")).returncode == 0
    section = await _a_section(api)
    student = await _undrained(api, section.section_id)

    behind = await acoursereg(settings, "reconcile", "--wait", "0.2")
    assert behind.returncode == 1
    assert "not persisted yet" in behind.stderr
    assert (await acoursereg(settings, "reconcile", "--force")).returncode == 1, "drift: lag"
    assert await _enrolled_in_postgres(settings, student) == 0

    done = await acoursereg(settings, "rebuild-cache")
    assert done.returncode == 0, done.stderr
    assert await _enrolled_in_postgres(settings, student) == 1, "drained before the reload"
    standing = await api.container.seats.standing(student, section.section_id)
    assert standing is not None and standing.status == "ENROLLED", "the answer kept"
    assert (await acoursereg(settings, "reconcile")).returncode == 0


async def test_rebuild_cache_reloads_the_live_state_and_the_api_goes_on(
    api: Api, settings: Settings
) -> None:
    assert (await acoursereg(settings, "seed-demo")).returncode == 0
    section = await _a_section(api)
    await api.container.redis.set(api.container.keys.section(section.section_id).seats, 1)
    before = await api.container.state.last_report()

    done = await acoursereg(settings, "rebuild-cache")
    assert done.returncode == 0, done.stderr
    assert f"rebuilt 200 sections of {settings.shards} shards" in done.stdout
    assert not await api.container.state.missing_shards()
    report = await api.container.state.last_report()
    assert report is not None and report != before
    (state,) = await api.container.seats.states([section.section_id])
    assert state is not None and state.available_seats == section.total_seats

    student = next(
        s for s, status in await api.container.snapshot.student_statuses() if status == "active"
    )
    body = await api.gql(
        REGISTER,
        api.student_token(student),
        i={"studentId": str(student), "sectionIds": [str(section.section_id)]},
    )
    assert [r["outcome"] for r in body["data"]["register"]["results"]] == ["ENROLLED"], body

    assert (await acoursereg(settings, "rebuild-cache", "--force")).returncode == 2, (
        "no --force: a rebuild drains the streams first, always"
    )
