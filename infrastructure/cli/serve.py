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
from typing import TYPE_CHECKING, Any

from infrastructure.cli.command import EXIT_FAILED, EXIT_OK, Command, CommandFailed, arg
from infrastructure.cli.demo import describe_demo, seed
from infrastructure.cli.ops import cmd_migrate
from infrastructure.settings import Settings, SettingsError

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` stays quick
    from starlette.types import ASGIApp


# What each process of `serve --processes N` imports and calls (an import string: uvicorn
# starts its processes with multiprocessing's spawn, so they build their app themselves).
APP_FACTORY = "infrastructure.cli.serve:app_from_environment"
# The supervisor's pid, for its processes to check they did not outlive it.
SUPERVISOR_PID = "COURSEREG_SUPERVISOR_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h
GRACEFUL_SHUTDOWN_SECONDS = 20


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    host, port = args.host or settings.host, args.port or settings.port
    processes = process_count(args.processes, settings)
    if processes == 1:
        from infrastructure.http.app import create_app

        serve_app(create_app(settings), settings, host, port)
    else:
        return EXIT_OK if serve_processes(settings, host, port, processes) else EXIT_FAILED
    return EXIT_OK


def process_count(given: int | None, settings: Settings) -> int:
    """`--processes`, else WEB_CONCURRENCY, else one per core this process may use."""
    if given is not None and given < 1:
        raise SettingsError("--processes: must be at least 1")
    return given or settings.web_concurrency or available_cores()


def available_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The API's uvicorn options, one process or many (the benches use them too)."""
    return {
        # asyncio's loop, not uvloop: under overload uvloop served some connections for
        # seconds before others (p99 4.5 s against asyncio's 0.17 s at the same throughput,
        # 200 connections; docs/benchmarks/README.md), and the rush needs every student
        # answered in turn.
        "loop": "asyncio",
        "http": "httptools",
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "lifespan": "on",
        "log_level": settings.log_level.lower(),
        "log_config": None,  # configure_logging's handler: JSON or text, request ids, redaction
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        # An idle connection outlives the proxy's (nginx.conf) and clients' pools: closing
        # one the moment they reuse it drops that request with a reset.
        "timeout_keep_alive": settings.keep_alive_seconds,
        # Pushes are ~200 bytes: compression saves little and costs each websocket ~40 KB.
        "ws_per_message_deflate": False,
    }


def serve_app(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    """One process: uvicorn with the API's options (the benches serve their variants so)."""
    import uvicorn

    from infrastructure.cli.heap import tune_collector

    tune_collector()
    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))


def serve_processes(settings: Settings, host: str, port: int, processes: int) -> bool:
    """`processes` API processes, each on a listening socket of its own (SO_REUSEPORT, one
    address), under uvicorn's supervisor (this process): each has its own lifespan (pools,
    hub connection, state watcher). SIGTERM or SIGINT here stops them all together: each
    gets SIGTERM and shuts down gracefully
    (finishes its requests in flight, up to GRACEFUL_SHUTDOWN_SECONDS), then this process
    exits. A process that dies is logged at ERROR and replaced by a new one; one that
    fails while starting (its lifespan raised) stops them all, and this returns False."""
    import uvicorn

    from infrastructure.cli.supervisor import Supervisor, listening_sockets

    # The processes read their settings from the environment: with the embedded servers'
    # URLs when this process started them (they stay up while this process runs).
    os.environ["DATABASE_URL"] = settings.postgres
    os.environ["REDIS_URL"] = settings.redis
    os.environ[SUPERVISOR_PID] = str(os.getpid())
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=processes,
        **uvicorn_options(settings),
    )
    try:
        sockets = listening_sockets(host, port, processes)
    except OSError as exc:
        raise CommandFailed(f"cannot listen on {host}:{port}: {exc}") from exc
    supervisor = Supervisor(config, sockets=sockets)
    supervisor.run()
    return not supervisor.failed


def die_with_parent() -> None:
    """A process of `serve --processes N` gets SIGTERM (and shuts down gracefully) when its
    supervisor dies, even by SIGKILL: never an orphan still serving. Linux's prctl through
    ctypes (no library offers it for a spawned process); elsewhere nothing."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if str(os.getppid()) != os.environ.get(SUPERVISOR_PID):  # it died before prctl
        raise SystemExit("coursereg: the supervisor of this API process is gone")


def app_from_environment() -> ASGIApp:
    """The app of one process of `serve --processes N`, called in that process."""
    from infrastructure.cli.heap import tune_collector
    from infrastructure.http.app import create_app
    from infrastructure.logs import configure_logging
    from infrastructure.settings import load_settings

    die_with_parent()
    settings = load_settings()  # checked by the parent already: the same environment
    configure_logging(settings)
    app = create_app(settings)
    tune_collector()
    return app


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
    processes = ["--processes", str(args.processes)] if args.processes else []
    children = [subprocess.Popen([*me, "serve", *processes], env=env)]
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


PROCESSES_HELP = "default: WEB_CONCURRENCY, else one per core this process may use"

SERVE = Command(
    "serve",
    "run the API (GraphQL, REST, probes)",
    cmd_serve,
    (
        arg("--host", help="default: HOST"),
        arg("--port", type=int, help="default: PORT"),
        arg("--processes", type=int, help=PROCESSES_HELP),
    ),
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
        arg("--processes", type=int, help=f"API processes: {PROCESSES_HELP}"),
    ),
)
