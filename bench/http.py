"""HTTP variants: API processes (the product's `coursereg serve`, or bench/server.py's
variants of the same app) loaded by wrk, a C load generator, so the client is not what
bounds the figures. wrk's Lua script (bench/wrk/) takes each request's token and body from
a data file written here: every request is a real student's, with their own JWT."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

from bench.measure import Result
from bench.replica import Replica, free_port
from domain.model import Role
from infrastructure.auth import TokenService
from infrastructure.http.documents import operations
from infrastructure.settings import Settings
from tests.client import drop_input, register_input

WRK_DIR = Path(__file__).parent / "wrk"


# The student app's trusted documents, as the app sends them: the product runs them through
# their prepared plans (infrastructure/http/plans.py; COURSEREG_PLANS=false: graphql-core).
DOCUMENTS = operations(Path(__file__).resolve().parents[1] / "webapp" / "operations")


def register_body(student: UUID, sections: Sequence[UUID]) -> str:
    variables = {"input": register_input(student, sections)}
    body = {"query": DOCUMENTS["Register"], "variables": variables}
    return json.dumps(body, separators=(",", ":"))


def drop_body(student: UUID, section: UUID) -> str:
    variables = {"input": drop_input(student, section)}
    return json.dumps({"query": DOCUMENTS["Drop"], "variables": variables}, separators=(",", ":"))


def write_requests(path: Path, tokens: TokenService, requests: Iterable[tuple[UUID, str]]) -> int:
    """One line per request: the student's JWT, a tab, the JSON body."""
    issued: dict[UUID, str] = {}
    count = 0
    with path.open("w") as out:
        for student, body in requests:
            token = issued.get(student)
            if token is None:
                token = issued[student] = tokens.issue(Role.STUDENT, str(student))
            out.write(f"{token}\t{body}\n")
            count += 1
    return count


def server_env(settings: Settings, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": settings.postgres,
        "REDIS_URL": settings.redis,
        "COURSEREG_JWT_SECRET": settings.jwt_secret,
        "COURSEREG_KEY_PREFIX": settings.key_prefix,
        "COURSEREG_SHARDS": str(settings.shards),
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # wrk's one address stands for thousands of students' own: the per-address limit
        # would refuse the load itself. The per-student limit stays on.
        "COURSEREG_RATE_IP": "0",
        # The closed-loop rows measure throughput at saturation: wrk sends again the moment
        # it is answered, so any refusal for load would come back at once as another request
        # (a storm that measures the client). Admission control is on in the overload row,
        # whose open loop is what it is for (bench/overload.py).
        "COURSEREG_ADMISSION_LIMIT": "0",
    }


async def start_server(
    settings: Settings, variant: str, log: Path, env: dict[str, str] | None = None
) -> Replica:
    """`product`: `coursereg serve`; `ceiling` / `baseline`: bench/server.py; `env` adds
    settings (e.g. COURSEREG_RULES=false)."""
    port = free_port()
    if variant == "product":
        command = [sys.executable, "-m", "infrastructure.cli", "serve", "--port", str(port)]
        command += ["--processes", "1"]  # one process: its CPU is what cpu_seconds reads
    else:
        command = [sys.executable, "-m", "bench.server", "--variant", variant]
        command += ["--port", str(port)]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env={**server_env(settings, port), **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    replica = Replica(f"http://127.0.0.1:{port}", process)
    await replica.wait_ready()
    return replica


async def run_wrk(
    url: str,
    data: Path,
    connections: int,
    seconds: float,
    once: bool = False,
    log: Path | None = None,
) -> dict[str, Any]:
    """wrk's figures (the WRK line its script prints); `once` sends each line once."""
    script = WRK_DIR / ("once.lua" if once else "graphql.lua")
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "30s",
        "-s",
        str(script.relative_to(Path.cwd())),
        url,
        "--",
        str(data),
        str(log or ""),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    text = output.decode()
    for line in text.splitlines():
        if line.startswith("WRK "):
            return dict(json.loads(line[4:]))
    raise RuntimeError(f"wrk printed no figures:\n{text}")


def wrk_result(
    key: str, title: str, figures: dict[str, Any], cpu: float | None = None, **extra: Any
) -> Result:
    """`cpu`: the server processes' CPU seconds during the run."""
    errors = (
        figures["socket_errors"]
        + figures["timeouts"]
        + sum(v for k, v in figures["errors"].items())
    )
    return Result(
        key=key,
        title=title,
        layer=extra.pop("layer", "http"),
        throughput=round(figures["requests"] / figures["seconds"], 1),
        unit="req/s",
        count=figures["requests"],
        seconds=round(figures["seconds"], 3),
        errors=errors,
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        cpu_ms_per_op=round(cpu * 1000 / figures["requests"], 4) if cpu else None,
        outcomes={**figures["outcomes"], **{f"error:{k}": v for k, v in figures["errors"].items()}},
        **extra,
    )
