"""`coursereg serve --processes 2` as a subprocess: both processes answer (each connection
stays with the process that accepted it, and /live says which), the rate limits hold for
the two together (the burst in total, not twice), SIGTERM stops both with the requests in
flight answered, a process that dies is replaced, and none outlives the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from domain.model import Role
from infrastructure.settings import Settings
from tests.client import REGISTER
from tests.conftest import Api, Catalog
from tests.footprint import error_code
from tests.servers import free_port, replica_env, wait_ready
from tests.waiting import wait_until

# Slow refills: nothing refills while the test runs.
LIMITS = {
    "COURSEREG_RATE_STUDENT": "0.001",
    "COURSEREG_RATE_STUDENT_BURST": "4",
    "COURSEREG_RATE_IP": "0.001",
    "COURSEREG_RATE_IP_BURST": "8",
    "LOG_LEVEL": "INFO",
}
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    seen: set[int] = field(default_factory=set)  # every child found: stopped at the end

    def children(self) -> set[int]:
        """The supervisor's child processes (the API processes and multiprocessing's
        resource tracker), from /proc."""
        found = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.process.pid:
                        found.add(int(entry))
        self.seen |= found
        return found


@contextlib.asynccontextmanager
async def serving(settings: Settings, tmp_path: Path) -> AsyncIterator[Served]:
    port = free_port()
    env = {**replica_env(settings, port), **LIMITS}
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "infrastructure.cli", "serve", "--processes", "2"]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stderr=sink)
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        await wait_ready(served.url, process, 60)
        served.children()
        yield served
    finally:
        served.children()
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for pid in served.seen:  # left only if the test failed before they stopped
            with contextlib.suppress(OSError):
                if b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)


async def pid_of(client: httpx.AsyncClient) -> int:
    return int((await client.get("/live")).json()["pid"])


@contextlib.asynccontextmanager
async def one_client_per_process(url: str) -> AsyncIterator[dict[int, httpx.AsyncClient]]:
    """A one-connection client on each process: a connection is answered by the process
    that accepted it for as long as it is kept alive."""
    pinned: dict[int, httpx.AsyncClient] = {}
    try:
        for _ in range(200):
            client = httpx.AsyncClient(base_url=url, timeout=10, limits=ONE_CONNECTION)
            pid = await pid_of(client)
            if pid in pinned:
                await client.aclose()
            else:
                pinned[pid] = client
            if len(pinned) == 2:
                break
        assert len(pinned) == 2, f"only {list(pinned)} answered"
        yield pinned
    finally:
        for client in pinned.values():
            await client.aclose()


def register_body(student: Any, section: Any) -> dict[str, Any]:
    ids = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
    return {"query": REGISTER, "variables": {"i": ids}}


async def test_two_processes_answer_share_the_rate_limits_and_stop_together_on_sigterm(
    api: Api, catalog: Catalog, settings: Settings, tmp_path: Path
) -> None:
    section = await catalog.section(seats=50)
    student, others = await catalog.student(), await catalog.students(9)
    async with serving(settings, tmp_path) as served:
        async with one_client_per_process(served.url) as pinned:
            assert set(pinned) <= served.children()
            clients = list(pinned.values())

            async def register(i: int, token: str, who: Any) -> dict[str, Any]:
                headers = {"Authorization": f"Bearer {token}"}
                answer = await clients[i % 2].post(
                    "/graphql", json=register_body(who, section), headers=headers
                )
                return dict(answer.json())

            # A student's burst of 4, then 3 more: over both processes, 3 are refused.
            token = api.student_token(student.id)
            bodies = [await register(i, token, student) for i in range(7)]
            refused = [b for b in bodies if "errors" in b]
            assert len(refused) == 3, bodies
            assert all(error_code(b) == "RATE_LIMITED" for b in refused)
            assert all("this student" in b["errors"][0]["message"] for b in refused)
            # The address: 8, of which the student's 4 admitted spent 4 (the 3 refused
            # gave theirs back); staff, limited by address only, get the other 4 of 7.
            staff = api.token(Role.STAFF)
            bodies = [await register(i, staff, others[i]) for i in range(7)]
            refused = [b for b in bodies if "errors" in b]
            assert len(refused) == 3, bodies
            assert all("this address" in b["errors"][0]["message"] for b in refused)
            assert [await pid_of(c) for c in clients] == list(pinned), "spread over both"

        # A register in flight on each process (its body half sent) when SIGTERM comes.
        in_flight = await half_sent_registers(served, api, others[7:], section)
        served.process.send_signal(signal.SIGTERM)
        await wait_until(
            lambda: served.log.read_text().count("Waiting for connections to close") == 2,
            20,
            "both processes shutting down, waiting for their requests",
        )
        answers = [await finish(*request) for request in in_flight]
        code = await asyncio.to_thread(served.process.wait, 30)
        assert code == 0
        assert not served.children(), "every API process stopped"
    for status, body in answers:
        assert status == 200, body
        assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED", body
    assert "Traceback" not in served.log.read_text(), served.log.read_text()[-3000:]


Request = tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]


async def half_sent_registers(
    served: Served, api: Api, students: list[Any], section: Any
) -> list[Request]:
    """One connection on each process, a register's headers and half its body sent."""
    port = int(served.url.rsplit(":", 1)[1])
    by_pid: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
    for _ in range(200):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /live HTTP/1.1\r\nHost: api\r\n\r\n")
        _, live = await read_response(reader)
        if live["pid"] in by_pid:
            writer.close()
        else:
            by_pid[live["pid"]] = reader, writer
        if len(by_pid) == 2:
            break
    assert len(by_pid) == 2
    requests = []
    for (reader, writer), student in zip(by_pid.values(), students, strict=False):
        body = json.dumps(register_body(student, section)).encode()
        token = api.student_token(student.id)
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n".encode()
            # its own address (uvicorn trusts a local proxy): the test's own is spent
            + b"X-Forwarded-For: 10.9.9.9\r\n\r\n"
            + body[: len(body) // 2]
        )
        await writer.drain()
        requests.append((reader, writer, body[len(body) // 2 :]))
    return requests


async def finish(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes
) -> tuple[int, dict[str, Any]]:
    writer.write(rest)
    await writer.drain()
    try:
        return await asyncio.wait_for(read_response(reader), 20)
    finally:
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    status = int(head.split(" ", 2)[1])
    length = next(
        int(line.split(":", 1)[1])
        for line in head.split("\r\n")
        if line.lower().startswith("content-length:")
    )
    return status, json.loads(await reader.readexactly(length))


async def test_a_process_that_dies_is_replaced_and_none_outlives_the_supervisor(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    async with serving(settings, tmp_path) as served:
        async with one_client_per_process(served.url) as pinned:
            first = set(pinned)
        doomed = min(first)
        os.kill(doomed, signal.SIGKILL)
        async with httpx.AsyncClient(base_url=served.url, timeout=5) as client:
            seen: set[int] = set()

            async def replaced() -> bool:
                # a fresh connection each time: either process may take it
                with contextlib.suppress(httpx.HTTPError):
                    seen.add(await pid_of(client))
                    client.headers["Connection"] = "close"
                return bool(seen - first)

            await wait_until(replaced, 30, "a new API process answering", interval=0.05)
        assert f"API process {doomed} exited with -9: starting another" in served.log.read_text()
        survivors = served.children()
        assert doomed not in survivors and first - {doomed} <= survivors

        # The supervisor killed outright: its API processes stop by themselves (SIGTERM
        # from the kernel when their parent dies), never left serving as orphans.
        served.process.kill()
        served.process.wait()
        started = time.monotonic()

        def gone() -> bool:
            alive = set()
            for pid in survivors:
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    if stat.rsplit(")", 1)[1].split()[0] != "Z":
                        alive.add(pid)
            return not alive

        await wait_until(gone, 30, "the API processes stopping after their supervisor")
        print(f"\nAPI processes gone {time.monotonic() - started:.1f} s after the supervisor")
