"""Probes for operators: /live (process up), /ready (can serve), /health (every component).

/ready needs Redis and the live state; Postgres only until the first time the process is
ready (migrations checked, state loaded). Afterwards a Postgres outage leaves /ready at 200
("degraded"): register and drop need only Redis, and a load balancer must not pull every
replica. /health reports it, with the growing stream lag.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from infrastructure.container import Container
from infrastructure.postgres.migrate import current_revision, head_revision

PROBE_TIMEOUT = 2.0


@dataclass
class Readiness:
    """What this process has established since it started."""

    migrations_ok: bool = False
    state_loaded: bool = False
    problem: str = "starting"
    started: float = field(default_factory=time.monotonic)

    @property
    def was_ready(self) -> bool:
        return self.migrations_ok and self.state_loaded


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check, PROBE_TIMEOUT)
    except Exception as exc:
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result = {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if isinstance(detail, dict):
        result.update(detail)
    return result


async def _postgres(container: Container) -> dict[str, Any]:
    async with container.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    current = await current_revision(container.engine)
    return {"migration": current, "head": head_revision(), "at_head": current == head_revision()}


async def _redis(container: Container) -> dict[str, Any]:
    await container.redis.ping()
    missing = await container.state.missing_shards()
    return {"state_loaded": not missing, "shards_missing": missing}


async def live(request: Request) -> JSONResponse:
    """`pid`: which process answered (`coursereg serve --processes N` runs N)."""
    return JSONResponse({"status": "live", "pid": os.getpid()})


async def ready(request: Request) -> JSONResponse:
    container: Container = request.app.state.container
    readiness: Readiness = request.app.state.readiness
    redis = await _timed(_redis(container))
    if redis["status"] != "up" or not redis.get("state_loaded"):
        return JSONResponse({"status": "not ready", "redis": redis}, status_code=503)
    if not readiness.was_ready:
        return JSONResponse({"status": "not ready", "reason": readiness.problem}, status_code=503)
    postgres = await _timed(_postgres(container))
    status = "ready" if postgres["status"] == "up" else "degraded"
    return JSONResponse({"status": status, "redis": "up", "postgres": postgres["status"]})


async def health(request: Request) -> JSONResponse:
    container: Container = request.app.state.container
    redis, postgres = await asyncio.gather(_timed(_redis(container)), _timed(_postgres(container)))
    body: dict[str, Any] = {"pid": os.getpid(), "redis": redis, "postgres": postgres}
    if redis["status"] == "up":
        body["streams"] = await _timed(container.stream.lag(container.keys.shards))
        body["dead_letters"] = await container.stream.dead_letter_count(container.keys.shards)
        body["recovery"] = await container.state.last_report()
        body["workers"] = await container.stream.live_workers()
    if postgres["status"] == "up":
        body["notifications"] = await _timed(container.outbox.counts())
    hub = container.hub
    if hub is not None:
        body["subscriptions"] = {
            "channels": hub.channel_count,
            "listeners": hub.listener_count,
            "reconnects": hub.reconnects,
        }
    if redis["status"] != "up":
        status, code = "down", 503
    elif (
        postgres["status"] != "up"
        or body.get("dead_letters")
        or body.get("notifications", {}).get("dead")
    ):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JSONResponse({"status": status, **body}, status_code=code)
