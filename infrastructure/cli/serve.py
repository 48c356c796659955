"""The long-running processes: `serve` (the API), `worker` (a stream worker) and `run` (the
API and its workers as children of one process group, as `make run` starts them)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

from infrastructure.cli.command import EXIT_FAILED, EXIT_OK, Command, arg
from infrastructure.cli.demo import describe_demo, seed
from infrastructure.cli.ops import cmd_migrate
from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` stays quick
    from starlette.types import ASGIApp


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.http.app import create_app

    serve_app(
        create_app(settings), settings, args.host or settings.host, args.port or settings.port
    )
    return EXIT_OK


def serve_app(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    """uvicorn with the API's options (the benches serve their variants with them too)."""
    import uvicorn

    from infrastructure.cli.heap import tune_collector

    tune_collector()
    uvicorn.run(
        app,
        host=host,
        port=port,
        # asyncio's loop, not uvloop: under overload uvloop served some connections for
        # seconds before others (p99 4.5 s against asyncio's 0.17 s at the same throughput,
        # 200 connections; docs/benchmarks/README.md), and the rush needs every student
        # answered in turn.
        loop="asyncio",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        lifespan="on",
        log_level=settings.log_level.lower(),
        log_config=None,  # configure_logging's handler: JSON or text, request ids, redaction
        access_log=False,
        timeout_graceful_shutdown=20,
        # An idle connection outlives the proxy's (nginx.conf) and clients' pools: closing
        # one the moment they reuse it drops that request with a reset.
        timeout_keep_alive=settings.keep_alive_seconds,
        # Pushes are ~200 bytes: compression saves little and costs each websocket ~40 KB.
        ws_per_message_deflate=False,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.cli.worker import run_worker

    consumer = args.name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": args.metrics_port})
    asyncio.run(run_worker(settings, consumer))
    return EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, then the API and its workers as children in one process group."""
    code = cmd_migrate(args, settings)
    if code != EXIT_OK:
        return code
    demo = seed(settings) if args.demo else None
    me = [sys.executable, "-m", "infrastructure.cli"]
    # The children use the same servers, embedded ones included.
    env = {**os.environ, "DATABASE_URL": settings.postgres, "REDIS_URL": settings.redis}
    children = [subprocess.Popen([*me, "serve"], env=env)]
    for i in range(args.workers):
        port = settings.worker_metrics_port
        metrics = ["--metrics-port", str(port + i)] if port else []
        children.append(subprocess.Popen([*me, "worker", *metrics], env=env))
    host, port = settings.host, settings.port
    print(f"API on http://{host}:{port}/graphql with {args.workers} worker(s); Ctrl-C stops all")
    if demo is not None:
        print("\n".join(describe_demo(settings, demo)))
    return supervise(children)


def supervise(children: list[subprocess.Popen[bytes]]) -> int:
    """Wait until one child exits or we are told to stop; then stop them all (SIGTERM)."""
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    codes = [child.wait(timeout=60) for child in children]
    return EXIT_OK if stopping else max([*codes, EXIT_FAILED])


SERVE = Command(
    "serve",
    "run the API (GraphQL, REST, probes)",
    cmd_serve,
    (arg("--host", help="default: HOST"), arg("--port", type=int, help="default: PORT")),
)
WORKER = Command(
    "worker",
    "run a stream worker (persists changes to Postgres)",
    cmd_worker,
    (
        arg("--name", help="consumer name (default: host-pid-random)"),
        arg(
            "--metrics-port",
            type=int,
            help="serve /metrics here (default: COURSEREG_WORKER_METRICS_PORT)",
        ),
    ),
)
RUN = Command(
    "run",
    "migrate, then the API and workers in one process group",
    cmd_run,
    (
        arg("--workers", type=int, default=1, help="worker processes (default 1)"),
        arg("--demo", action="store_true", help="load the demo catalog (seed-demo)"),
    ),
)
