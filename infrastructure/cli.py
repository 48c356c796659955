"""`coursereg`: the operator's command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence

from domain.model import Role
from infrastructure.settings import Settings, SettingsError, load_settings

log = logging.getLogger("coursereg")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from infrastructure.app import create_app

    uvicorn.run(
        create_app(settings),
        host=args.host or settings.host,
        port=args.port or settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=20,
    )
    return EXIT_OK


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.worker import run_worker

    consumer = args.name or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    asyncio.run(run_worker(settings, consumer))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.migrate import create_database_if_missing, upgrade

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
    me = [sys.executable, "-m", "infrastructure.cli"]
    children = [subprocess.Popen([*me, "serve"])]
    children += [subprocess.Popen([*me, "worker"]) for _ in range(args.workers)]
    host, port = settings.host, settings.port
    print(f"API on http://{host}:{port}/graphql with {args.workers} worker(s); Ctrl-C stops all")
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
    run.set_defaults(run=cmd_run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings)
    command: Callable[[argparse.Namespace, Settings], int] = args.run
    try:
        return command(args, settings)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
