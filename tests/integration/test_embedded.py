"""A bare machine: with no DATABASE_URL / REDIS_URL, `coursereg` starts an embedded
PostgreSQL and Valkey from their wheels, shares them between its processes, keeps their data
across restarts and stops them with its last user; the test suite passes there too."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis

from infrastructure.cli.embedded import EmbeddedServers
from tests.conftest import SECRET, _with_database
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
# A share of the suite that drives every part: app, Lua scripts, pub/sub, worker processes.
BARE_SUBSET = [
    "tests/integration/test_race.py",
    "tests/integration/test_metrics.py",
]

CHILD = textwrap.dedent(
    """
    import sys
    from infrastructure.cli.embedded import EmbeddedServers
    servers = EmbeddedServers(sys.argv[1])
    found = servers.acquire()
    print(found.postgres_url, found.redis_url, flush=True)
    sys.stdin.readline()
    servers.release()
    """
)


@pytest.fixture
def data() -> Iterator[Path]:
    """Where the servers keep their data. Not under pytest's tmp_path: each pytest start
    makes that 0700 again, and PostgreSQL runs as another user when we are root."""
    path = Path(tempfile.mkdtemp(prefix="coursereg-embedded-"))
    yield path / "data"
    if (path / "data").exists():  # a failed test may have killed their last user
        EmbeddedServers(path / "data").release()
    shutil.rmtree(path, ignore_errors=True)


def bare_env(data: Path, **extra: str) -> dict[str, str]:
    """This environment less every server URL: what a newcomer's laptop has."""
    gone = {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in gone}
    return {**env, "COURSEREG_DATA_DIR": str(data), "COURSEREG_JWT_SECRET": SECRET, **extra}


def reachable(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


async def test_servers_are_shared_kept_across_restarts_and_stopped_by_the_last_user(
    data: Path,
) -> None:
    servers = EmbeddedServers(data)
    mine = servers.acquire()
    assert mine.postgres_url and mine.redis_url
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().split() == [mine.postgres_url, mine.redis_url]
        admin = _with_database(mine.postgres_url, "postgres")
        connection = await asyncpg.connect(admin)
        await connection.execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('pg')")
        await connection.close()
        with redis.Redis.from_url(mine.redis_url) as client:
            client.set("kept", "valkey")

        servers.release()  # the child still uses them
        assert reachable(mine.redis_url)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(30) == 0
    assert not reachable(mine.redis_url), "the last user stopped Valkey"
    assert not (data / "postgres" / "postmaster.pid").exists()

    with servers.serving() as again:
        assert again.redis_url is not None and again.postgres_url is not None
        with redis.Redis.from_url(again.redis_url, decode_responses=True) as client:
            assert client.get("kept") == "valkey"
        connection = await asyncpg.connect(_with_database(again.postgres_url, "postgres"))
        assert await connection.fetchval("SELECT note FROM kept") == "pg"
        await connection.close()


async def _urls_printed(log: Path, seconds: float = 30) -> list[str]:
    """The DATABASE_URL= and REDIS_URL= lines a process printed about its servers."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = [line.strip() for line in log.read_text().splitlines()]
        found = [line for line in lines if line.startswith(("DATABASE_URL=", "REDIS_URL="))]
        if len(found) == 2:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no URLs in {log}: {log.read_text()[-2000:]}")


async def test_serve_and_worker_started_apart_share_the_servers(data: Path, tmp_path: Path) -> None:
    env = bare_env(data, PORT=str(free_port()), LOG_LEVEL="WARNING")
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "worker")}
    children = {}
    for name, log in logs.items():
        with log.open("wb") as sink:
            children[name] = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", name], env=env, stderr=sink
            )
        await _urls_printed(log)  # one at a time: the second finds the first's servers
    try:
        serve_urls, worker_urls = [await _urls_printed(log) for log in logs.values()]
        assert serve_urls == worker_urls
        redis_url = serve_urls[1].removeprefix("REDIS_URL=")
        children["serve"].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(children["serve"].wait, 30) == 0
        assert reachable(redis_url), "the worker still uses them"
        children["worker"].send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(children["worker"].wait, 30) == 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    assert not reachable(redis_url), "the last one out stopped them"
    assert not (data / "postgres" / "postmaster.pid").exists()


async def _wait_for(url: str, process: subprocess.Popen[bytes], seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"coursereg run exited: {log.read_text()[-3000:]}"
            try:
                if (await client.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


async def test_make_run_on_a_bare_machine_serves_the_demo_and_stops_everything(
    data: Path, tmp_path: Path
) -> None:
    port = free_port()
    env = bare_env(data, PORT=str(port), LOG_LEVEL="WARNING")
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        run = subprocess.Popen(
            [sys.executable, "-m", "infrastructure.cli", "run", "--workers", "1", "--demo"],
            env=env,
            stdout=stdout,
            stderr=stderr,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_for(url, run, 60, err)
        for _ in range(100):
            if "dashboard:" in out.read_text():
                break
            await asyncio.sleep(0.05)
        printed = out.read_text()
        token = next(line.strip() for line in printed.splitlines() if line.startswith("  eyJ"))
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            body = (
                await client.post(
                    "/graphql",
                    json={"query": "{ sections(first: 1) { totalCount } }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
            ).json()
            assert body["data"]["sections"]["totalCount"] == 200
    finally:
        run.send_signal(signal.SIGINT)
        code = await asyncio.to_thread(run.wait, 60)
    assert code == 0, err.read_text()[-3000:]
    notes = err.read_text()
    assert "PostgreSQL 18" in notes and f"in {data / 'postgres'}" in notes
    assert "DATABASE_URL=postgresql://" in notes and "REDIS_URL=redis://127.0.0.1:" in notes
    assert (
        f"GraphiQL:  {url}/graphql" in printed
        and f"dashboard: {url}/dashboard?semester=" in printed
    )
    assert not (data / "postgres" / "postmaster.pid").exists(), "PostgreSQL stopped"
    assert not (data / "valkey" / "valkey.pid").exists(), "Valkey stopped"

    again = subprocess.run(
        [sys.executable, "-m", "infrastructure.cli", "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    assert "200 sections checked, 0 drifted" in again.stdout, "the data survived the restart"


def _can_isolate_network() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_isolate_network(), reason="needs root to unshare the network")
def test_the_suite_passes_with_no_server_reachable(tmp_path: Path) -> None:
    """In a network namespace of its own (only a loopback, so this machine's PostgreSQL and
    Redis cannot be reached) and with no TEST_* URLs, the fixtures start embedded servers.
    `make test-bare` runs the whole suite the same way."""
    command = (
        "ip link set lo up && exec "
        f"{sys.executable} -m pytest -q -p no:cacheprovider --basetemp={tmp_path / 'inner'} "
        + " ".join(BARE_SUBSET)
    )
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", command],
        env=bare_env(tmp_path / "unused"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
