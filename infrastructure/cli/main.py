"""`coursereg`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from domain.model import Role
from infrastructure.cli.embedded import EmbeddedUnavailable
from infrastructure.cli.ops import CommandFailed, add_commands, describe_demo, seed
from infrastructure.cli.tickets import add_tickets
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` stays quick
    from starlette.types import ASGIApp

log = logging.getLogger("coursereg")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# Commands that talk to PostgreSQL and Redis: with DATABASE_URL / REDIS_URL unset they use
# the embedded servers under COURSEREG_DATA_DIR (infrastructure/cli/embedded.py).
NEEDS_SERVERS = {
    "serve",
    "worker",
    "migrate",
    "run",
    "seed-demo",
    "reconcile",
    "rebuild-cache",
    "tickets",
}


class Terminated(BaseException):
    """SIGTERM reached the process's own handler: while it starts, or after uvicorn's graceful
    shutdown (which raises the signal again once done). Unwinds, so the embedded servers
    are released, and the process exits 0."""


def terminate(signum: int, frame: object) -> None:
    raise Terminated


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


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.postgres.migrate import create_database_if_missing, upgrade

    if asyncio.run(create_database_if_missing(settings.async_database_url)):
        print("created the database")
    upgrade(settings.async_database_url)
    print("database schema at head")
    return EXIT_OK


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.auth import TokenService

    role = Role(args.role)
    if role is Role.STUDENT:
        try:
            uuid.UUID(args.sub)
        except ValueError:
            print("a student token's --sub must be the student's id (a UUID)", file=sys.stderr)
            return EXIT_USAGE
    print(TokenService(settings.jwt_secret).issue(role, args.sub, args.ttl))
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coursereg", description="Course registration API.")
    sub = p.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API (GraphQL, REST, probes)")
    serve.add_argument("--host", help="default: HOST")
    serve.add_argument("--port", type=int, help="default: PORT")
    serve.set_defaults(run=cmd_serve)
    worker = sub.add_parser("worker", help="run a stream worker (persists changes to Postgres)")
    worker.add_argument("--name", help="consumer name (default: host-pid-random)")
    worker.add_argument(
        "--metrics-port",
        type=int,
        help="serve /metrics here (default: COURSEREG_WORKER_METRICS_PORT)",
    )
    worker.set_defaults(run=cmd_worker)
    migrate = sub.add_parser("migrate", help="create the database if missing; Alembic to head")
    migrate.set_defaults(run=cmd_migrate)
    token = sub.add_parser("token", help="print a JWT for GraphiQL and scripts")
    token.add_argument("--role", choices=[r.value for r in Role], required=True)
    token.add_argument("--sub", required=True, help="student id, or any id for staff")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(run=cmd_token)
    run = sub.add_parser("run", help="migrate, then the API and workers in one process group")
    run.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    run.add_argument("--demo", action="store_true", help="load the demo catalog (seed-demo)")
    run.set_defaults(run=cmd_run)
    add_commands(sub)
    add_tickets(sub)
    return p


@contextlib.contextmanager
def servers_for(command: str, settings: Settings) -> Iterator[Settings]:
    """The settings with the embedded servers' URLs where DATABASE_URL / REDIS_URL are
    unset; the servers start unless running and stop when their last user is done."""
    if command not in NEEDS_SERVERS or not settings.needs_embedded:
        yield settings
        return
    from infrastructure.cli.embedded import EmbeddedServers

    servers = EmbeddedServers(settings.data_dir)
    wanted = {"postgres": settings.database_url is None, "redis_server": settings.redis_url is None}
    with servers.serving(**wanted) as found:
        ready = settings.with_urls(found.postgres_url or "", found.redis_url or "")
        print(
            f"coursereg: embedded {servers.describe()}\n"
            f"  DATABASE_URL={ready.database_url}\n  REDIS_URL={ready.redis_url}",
            file=sys.stderr,
        )
        yield ready


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    command: Callable[[argparse.Namespace, Settings], int] = args.run
    try:
        with servers_for(args.command, settings) as ready:
            return command(args, ready)
    except (KeyboardInterrupt, Terminated):
        return EXIT_OK
    except SettingsError as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandFailed, EmbeddedUnavailable) as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_FAILED
