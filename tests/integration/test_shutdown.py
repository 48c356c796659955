"""Graceful shutdown under load: SIGTERM to a real `coursereg serve` and a real `coursereg
worker` while students register. Invariant (DESIGN.md 3): nothing answered is lost. Every
ENROLLED or WAITLISTED answer a client received is in Redis, and reaches Postgres once a
new worker has drained the streams; both processes exit 0 on their own."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from infrastructure.cli.worker import make_persister
from infrastructure.settings import Settings
from tests.client import REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.servers import free_port, replica_env, wait_ready

STUDENTS = 400
SECTIONS = 8
CONCURRENCY = 48
STOP_AFTER = 120  # answers before the SIGTERM


def start(settings: Settings, log: Path, *command: str, port: int) -> subprocess.Popen[bytes]:
    env = {**replica_env(settings, port), "COURSEREG_WORKER_BATCH": "50", "LOG_LEVEL": "INFO"}
    with log.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "infrastructure.cli", *command], env=env, stderr=sink
        )


async def load(
    api: Api, url: str, students: list[Any], sections: list[Any], answered: asyncio.Event
) -> tuple[set[tuple[uuid.UUID, uuid.UUID, str]], int, int]:
    """Register every student for two sections; returns the answers received, how many
    requests got no answer, and how many answers arrived after the SIGTERM."""
    answers: set[tuple[uuid.UUID, uuid.UUID, str]] = set()
    refused = late = 0
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY)

    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def register(student: Any) -> None:
            nonlocal refused, late
            chosen = random.sample(sections, 2)
            body = {
                "query": REGISTER,
                "variables": {
                    "i": {"studentId": str(student.id), "sectionIds": [str(s.id) for s in chosen]}
                },
            }
            headers = {"Authorization": f"Bearer {api.student_token(student.id)}"}
            async with gate:
                try:
                    response = await client.post("/graphql", json=body, headers=headers)
                except httpx.TransportError:
                    refused += 1
                    return
            late += answered.is_set()
            for result in response.json()["data"]["register"]["results"]:
                answers.add((student.id, uuid.UUID(result["sectionId"]), result["outcome"]))
            if len(answers) >= STOP_AFTER:
                answered.set()

        await asyncio.gather(*(register(s) for s in students))
    return answers, refused, late


async def in_redis(api: Api, student: uuid.UUID, section: uuid.UUID, outcome: str) -> bool:
    keys = api.container.keys.section(section)
    if outcome == "ENROLLED":
        return bool(await api.container.redis.sismember(keys.enrolled, str(student)))
    return await api.container.redis.zscore(keys.waitlist, str(student)) is not None


async def in_postgres(url: str) -> set[tuple[uuid.UUID, uuid.UUID, str]]:
    connection = await asyncpg.connect(url)
    try:
        enrolled = await connection.fetch(
            "SELECT student_id, section_id FROM registrations WHERE status = 'enrolled'"
        )
        waiting = await connection.fetch("SELECT student_id, section_id FROM waitlist")
    finally:
        await connection.close()
    return {(r[0], r[1], "ENROLLED") for r in enrolled} | {
        (r[0], r[1], "WAITLISTED") for r in waiting
    }


async def test_sigterm_mid_load_loses_no_answered_registration(
    api: Api, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    sections = [await catalog.section(seats=20, semester=semester) for _ in range(SECTIONS)]
    students = await catalog.students(STUDENTS)
    port = free_port()
    serve_log, worker_log = tmp_path / "serve.log", tmp_path / "worker.log"
    server = start(settings, serve_log, "serve", port=port)
    worker = start(settings, worker_log, "worker", "--name", "doomed", port=free_port())
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, server, 30)
        answered = asyncio.Event()
        running = asyncio.create_task(load(api, url, students, sections, answered))
        await asyncio.wait_for(answered.wait(), 60)
        stopped_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        worker.send_signal(signal.SIGTERM)
        answers, refused, late = await running
        server_code = await asyncio.to_thread(server.wait, 30)
        worker_code = await asyncio.to_thread(worker.wait, 30)
        stop_seconds = time.monotonic() - stopped_at
    finally:
        for child in (server, worker):
            if child.poll() is None:
                child.kill()
                child.wait()

    assert server_code == 0 and worker_code == 0, (server_code, worker_code)
    for log in (serve_log, worker_log):
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    assert "worker doomed stopped" in worker_log.read_text()
    assert len(answers) >= STOP_AFTER
    assert late > 0, "requests in flight at the SIGTERM were answered"
    missing = [a for a in answers if not await in_redis(api, *a)]
    assert not missing, f"{len(missing)} answered registrations are not in Redis"

    survivor = make_persister(api.container, "survivor")
    stop = asyncio.Event()
    task = asyncio.create_task(survivor.run(stop))
    try:
        await Worker(survivor, api.container).drain()
    finally:
        stop.set()
        await task
    lost = answers - await in_postgres(settings.postgres)
    assert not lost, f"{len(lost)} answered registrations never reached Postgres"
    print(
        f"\n{len(answers)} answers ({late} after SIGTERM), {refused} requests refused, "
        f"both processes stopped in {stop_seconds:.2f}s"
    )
