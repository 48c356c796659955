"""Fixtures: one Postgres database per test run (schema by `alembic upgrade head`), one
Redis key prefix per test; the ASGI app with its lifespan; an in-process worker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from domain.model import Actor, Role
from infrastructure.cli.embedded import EmbeddedServers
from infrastructure.cli.worker import make_persister
from infrastructure.container import Container
from infrastructure.http.app import create_app
from infrastructure.postgres.migrate import upgrade
from infrastructure.settings import Settings, load_settings
from tests.lossy import LossyProxy
from tests.redis_cluster import RedisClusterNodes, redis_cluster
from tests.servers import serve
from tests.waiting import wait_until
from workers.persister import Persister

SECRET = "test-secret-" + "x" * 40
# The `coursereg serve` subprocesses of tests run one API process each (not one per core)
# unless a test asks for more (--processes wins): tests/integration/test_processes.py.
os.environ.setdefault("WEB_CONCURRENCY", "1")
STAFF = Actor("staff-1", Role.STAFF)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@dataclass(frozen=True)
class Servers:
    admin_url: str  # a database of the server to create this run's database from
    redis_url: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    """TEST_DATABASE_URL / TEST_REDIS_URL when given (.ci/run gives this machine's
    services); embedded servers started for this run otherwise (a bare machine)."""
    admin, redis_url = os.environ.get("TEST_DATABASE_URL"), os.environ.get("TEST_REDIS_URL")
    if admin and redis_url:
        yield Servers(admin, redis_url)
        return
    # Not under pytest's tmp_path: each pytest start makes that 0700 again, and PostgreSQL
    # runs as another user when we are root.
    data = tempfile.mkdtemp(prefix="coursereg-test-servers-")
    try:
        with EmbeddedServers(data).serving(postgres=not admin, redis_server=not redis_url) as found:
            yield Servers(
                admin or _with_database(str(found.postgres_url), "postgres"),
                redis_url or str(found.redis_url),
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> Iterator[str]:
    """A fresh database for this run, migrated with Alembic; dropped afterwards."""
    name = f"coursereg_test_{uuid.uuid4().hex[:10]}"
    admin = servers.admin_url

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = _with_database(admin, name)
    upgrade(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    yield url
    asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str, servers: Servers) -> Settings:
    return load_settings(
        database_url=database_url,
        redis_url=servers.redis_url,
        jwt_secret=SECRET,
        key_prefix=f"t{uuid.uuid4().hex[:12]}:",
        shards=4,
        # Tests fire many requests per student from one address; test_limits.py tests the
        # limits with their own settings.
        rate_student=100_000,
        rate_student_burst=100_000,
        rate_ip=100_000,
        rate_ip_burst=1_000_000,
        # Tests fire bursts (300 registers at once) that admission control would partly
        # refuse for load, as it should in production; the middleware stays in the path with
        # a limit never reached and never lowered. test_overload.py sets its own.
        admission_limit=100_000,
        admission_min_limit=100_000,
    )


@pytest.fixture(scope="session")
def cluster() -> Iterator[RedisClusterNodes]:
    """A private Redis Cluster of three primaries (tests/redis_cluster.py), started once for
    the cluster tests; their module points `settings` at it."""
    with redis_cluster(3) as nodes:
        yield nodes


async def _truncate(url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "TRUNCATE registrations, waitlist, sections, courses, semesters, students, "
            "stream_offsets, webhook_subscriptions CASCADE"
        )
    finally:
        await connection.close()


async def forget_keys(container: Container) -> None:
    """Empty this test's key space, as a Redis restarted empty would, while holding the
    rebuild lock: the app's state watcher (a look a second) would otherwise rebuild shards
    the scan has not reached yet, and the scan would then delete half a rebuild (seen in CI
    on a busy shared Redis as a lost waitlist). Deleting under the lock leaves no such gap."""
    redis, lock = container.redis, container.keys.rebuild_lock
    token = uuid.uuid4().hex
    while not await redis.set(lock, token, nx=True, px=60_000):
        await asyncio.sleep(0.05)
    try:
        async for key in redis.scan_iter(match=f"{container.keys.prefix}*", count=10_000):
            if key != lock:
                await redis.delete(key)
    finally:
        await container.scripts.release(keys=[lock], args=[token])


@dataclass
class Api:
    """The app under test, driven over HTTP through its ASGI interface."""

    app: Starlette
    client: httpx.AsyncClient
    container: Container

    def token(self, role: Role = Role.STAFF, sub: str = "staff-1") -> str:
        return self.container.tokens.issue(role, sub)

    def student_token(self, student_id: Any) -> str:
        return self.token(Role.STUDENT, str(student_id))

    async def gql(self, query: str, token: str | None = None, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code < 500, response.text
        return response.json()

    async def staff(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.gql(query, self.token(), **variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def ready() -> bool:
                return (await client.get("/ready")).status_code == 200

            await wait_until(ready, 10, "the app ready", interval=0.05)
            yield Api(app, client, app.state.container)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    await _truncate(settings.postgres)
    async with running_app(settings) as running:
        yield running
        await forget_keys(running.container)


@pytest.fixture
async def lossy(servers: Servers) -> AsyncIterator[LossyProxy]:
    """A proxy in front of the test Redis that can lose a reply (tests/lossy.py)."""
    async with LossyProxy.serving(servers.redis_url) as proxy:
        yield proxy


@pytest.fixture
async def lossy_api(settings: Settings, lossy: LossyProxy) -> AsyncIterator[Api]:
    """`api`, its Redis (pool, scripts, pub/sub) reached only through `lossy`."""
    await _truncate(settings.postgres)
    async with running_app(settings.model_copy(update={"redis_url": lossy.url})) as running:
        yield running
        await forget_keys(running.container)


@pytest.fixture
async def rules_off_api(settings: Settings) -> AsyncIterator[Api]:
    """`api` with COURSEREG_RULES=false: the rule-free hot path the container chooses."""
    await _truncate(settings.postgres)
    async with running_app(settings.model_copy(update={"rules": False})) as running:
        yield running
        await forget_keys(running.container)


@pytest.fixture
async def students_api(settings: Settings) -> AsyncIterator[Api]:
    """`api` with COURSEREG_TRUSTED_DOCUMENTS=students: students and anonymous callers run
    only the app's trusted documents (infrastructure/http/documents.py)."""
    await _truncate(settings.postgres)
    async with running_app(
        settings.model_copy(update={"trusted_documents": "students"})
    ) as running:
        yield running
        await forget_keys(running.container)


@dataclass
class Worker:
    persister: Persister
    container: Container

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until every shard stream is applied and acknowledged."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            lag = await self.container.stream.lag(self.container.keys.shards)
            if lag["unapplied"] == 0 and lag["pending"] == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"streams not drained: {lag}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def worker(api: Api) -> AsyncIterator[Worker]:
    persister = make_persister(api.container, f"test-{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    yield Worker(persister, api.container)
    stop.set()
    await task


@dataclass
class Catalog:
    """Factories for catalog data, made through the staff services."""

    container: Container

    async def semester(self, opens: datetime | None = None, closes: datetime | None = None) -> Any:
        now = datetime.now(UTC)
        return await self.container.catalog.create_semester(
            STAFF,
            f"Term {uuid.uuid4().hex[:6]}",
            date(2026, 9, 1),
            date(2026, 12, 20),
            opens or now - timedelta(days=1),
            closes or now + timedelta(days=30),
        )

    async def course(self) -> Any:
        return await self.container.catalog.create_course(
            STAFF, f"C{uuid.uuid4().hex[:8]}", "A course"
        )

    async def section(self, seats: int, semester: Any = None, course: Any = None) -> Any:
        semester = semester or await self.semester()
        course = course or await self.course()
        return await self.container.catalog.create_section(
            STAFF, course.id, semester.id, uuid.uuid4().hex[:6], seats
        )

    async def student(self) -> Any:
        n = uuid.uuid4().hex[:12]
        return await self.container.catalog.create_student(
            STAFF, n, "Ada", "Lovelace", f"{n}@uni.edu"
        )

    async def students(self, count: int) -> list[Any]:
        return list(await asyncio.gather(*(self.student() for _ in range(count))))


@pytest.fixture
def catalog(api: Api) -> Catalog:
    return Catalog(api.container)


@pytest.fixture
def lossy_catalog(lossy_api: Api) -> Catalog:
    return Catalog(lossy_api.container)


@pytest.fixture
async def server(api: Api) -> AsyncIterator[str]:
    """The app of `api` on a real uvicorn socket, for websockets; yields http://host:port."""
    async with serve(api.app) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """Headless Chromium (the system's, `CHROMIUM`; see the Makefile) driven by Playwright."""
    from playwright.async_api import async_playwright

    executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.path.exists(executable):
        raise AssertionError(f"no Chromium at {executable}: run `make install` (apt chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=executable,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        await chromium.close()
