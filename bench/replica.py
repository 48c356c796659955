"""API processes for the benches: `coursereg serve` on free ports, sharing a database of
their own (made and dropped by the bench) and a Redis key prefix of their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from redis.asyncio import Redis

from infrastructure.postgres.migrate import create_database_if_missing, upgrade
from infrastructure.settings import Settings, load_settings


def bench_settings() -> Settings:
    """The servers of DATABASE_URL and REDIS_URL (this machine's by default), with a fresh
    database name and key prefix."""
    database = os.environ.get("DATABASE_URL", "postgresql://root@127.0.0.1:5432/coursereg")
    run = uuid.uuid4().hex[:8]
    return load_settings(
        database_url=urlunsplit(urlsplit(database)._replace(path=f"/coursereg_bench_{run}")),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=f"bench{run}:",
    )


async def prepare_database(settings: Settings) -> None:
    await create_database_if_missing(settings.async_database_url)
    await asyncio.to_thread(upgrade, settings.async_database_url)


async def drop_database(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis)
    try:
        async for key in redis.scan_iter(match=f"{settings.key_prefix}*", count=1000):
            await redis.delete(key)
    finally:
        await redis.aclose()
    parts = urlsplit(settings.postgres)
    admin = urlunsplit(parts._replace(path="/postgres"))
    connection = await asyncpg.connect(admin)
    try:
        name = parts.path.lstrip("/").replace('"', '""')
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, settings: Settings) -> Replica:
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": settings.postgres,
            "REDIS_URL": settings.redis,
            "COURSEREG_JWT_SECRET": settings.jwt_secret,
            "COURSEREG_KEY_PREFIX": settings.key_prefix,
            "COURSEREG_SHARDS": str(settings.shards),
            "PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
        command = [sys.executable, "-m", "infrastructure.cli", "serve", "--host", "127.0.0.1"]
        command += ["--processes", "1"]  # one process: its CPU and RSS are what is read
        return cls(f"http://127.0.0.1:{port}", subprocess.Popen(command, env=env))

    @classmethod
    @contextlib.asynccontextmanager
    async def pair(cls, settings: Settings) -> AsyncIterator[tuple[Replica, Replica]]:
        a, b = cls.start(settings), cls.start(settings)
        try:
            await asyncio.gather(a.wait_ready(), b.wait_ready())
            yield a, b
        finally:
            for replica in (a, b):
                replica.stop()

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"API process exited with {self.process.returncode}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/ready")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.url} never became ready")

    def rss_mb(self) -> float:
        """Resident memory of the API process, from /proc (Linux)."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def cpu_seconds(self) -> float:
        """User and system CPU time the API process has used, from /proc (Linux)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_in_scratch_database(
    run: Callable[[Settings], Coroutine[Any, Any, dict[str, Any]]], out: str | None
) -> None:
    """A bench of its own: a scratch database for `run`, dropped after; its figures printed
    as JSON and, with `out`, written there."""
    settings = bench_settings()
    asyncio.run(prepare_database(settings))
    try:
        figures = asyncio.run(run(settings))
    finally:
        asyncio.run(drop_database(settings))
    print(json.dumps(figures, indent=2))
    if out:
        with open(out, "w") as file:
            json.dump(figures, file, indent=2)
