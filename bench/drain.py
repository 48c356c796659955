"""Worker processes for the bench, and the two drain figures: rows/s from a filled stream
into Postgres by one worker, and how long Postgres trails the last answer of the rush."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench.http import server_env
from bench.measure import Result
from infrastructure.container import Container
from infrastructure.settings import Settings

POLL_SECONDS = 0.02


def start_worker(
    settings: Settings, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """`coursereg worker` as production runs it (its own process and pools); `env` adds
    settings (the notifier's)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "infrastructure.cli", "worker"],
            env={**server_env(settings, 8000), "LOG_LEVEL": "INFO", **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def lag(container: Container) -> int:
    found = await container.stream.lag(container.keys.shards)
    return int(str(found["unapplied"]))  # pending entries are among them


async def wait_drained(container: Container, timeout: float = 300.0) -> float:
    """Seconds until every stream is applied and acknowledged."""
    started = time.perf_counter()
    while await lag(container):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"streams not drained after {timeout} s")
        await asyncio.sleep(POLL_SECONDS)
    return time.perf_counter() - started


async def row_count(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT (SELECT count(*) FROM registrations) + (SELECT count(*) FROM waitlist)"
            )
        )
    finally:
        await connection.close()


async def measure_drain(
    container: Container, settings: Settings, log: Path
) -> tuple[Result, subprocess.Popen[bytes]]:
    """Start one worker on streams filled while none ran; time it until they are empty.
    The clock starts when the worker takes its first batch (the process's start-up is
    reported apart). Returns the running worker."""
    backlog = await lag(container)
    rows_before = await row_count(settings.postgres)
    launched = time.perf_counter()
    worker = start_worker(settings, log)
    while await lag(container) == backlog:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with {worker.returncode}; see {log}")
        await asyncio.sleep(POLL_SECONDS / 4)
    first = time.perf_counter()
    await wait_drained(container)
    finished = time.perf_counter()
    rows = await row_count(settings.postgres) - rows_before
    seconds = finished - first
    result = Result(
        key="drain",
        title="Worker drain: filled streams -> Postgres, one worker",
        layer="drain",
        throughput=round(backlog / seconds, 1),
        unit="changes/s",
        count=backlog,
        seconds=round(seconds, 3),
        notes=(
            f"{backlog} changes (each one registration or waitlist row; {rows} rows added), "
            f"batches of {settings.worker_batch}, one transaction each; "
            f"worker start-up {first - launched:.2f} s not counted"
        ),
    )
    return result, worker
