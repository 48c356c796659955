"""`coursereg`: the operator's command line. Every subcommand is a Command (command.py)
declared beside what it runs and listed once, in COMMANDS."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence

from infrastructure.cli.command import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Command, CommandFailed
from infrastructure.cli.demo import SEED_DEMO
from infrastructure.cli.embedded import EmbeddedUnavailable
from infrastructure.cli.export import EXPORT
from infrastructure.cli.imports import IMPORT
from infrastructure.cli.notifications import NOTIFICATIONS
from infrastructure.cli.ops import MIGRATE, REBUILD_CACHE, RECONCILE, TOKEN
from infrastructure.cli.serve import RUN, SERVE, WORKER
from infrastructure.cli.tickets import TICKETS
from infrastructure.logs import configure_logging
from infrastructure.settings import Settings, SettingsError, load_settings

COMMANDS: tuple[Command, ...] = (
    SERVE,
    WORKER,
    MIGRATE,
    TOKEN,
    RUN,
    SEED_DEMO,
    RECONCILE,
    REBUILD_CACHE,
    TICKETS,
    IMPORT,
    EXPORT,
    NOTIFICATIONS,
)


class Terminated(BaseException):
    """SIGTERM reached the process's own handler: while it starts, or after uvicorn's graceful
    shutdown (which raises the signal again once done). Unwinds, so the embedded servers
    are released, and the process exits 0."""


def terminate(signum: int, frame: object) -> None:
    raise Terminated


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coursereg", description="Course registration API.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_to(sub)
    return p


@contextlib.contextmanager
def servers_for(command: Command, settings: Settings) -> Iterator[Settings]:
    """The settings with the embedded servers' URLs where DATABASE_URL / REDIS_URL are
    unset; the servers start unless running and stop when their last user is done."""
    if not command.servers or not settings.needs_embedded:
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
    command: Command = args.command_spec
    try:
        with servers_for(command, settings) as ready:
            return command.run(args, ready)
    except (KeyboardInterrupt, Terminated):
        return EXIT_OK
    except SettingsError as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (CommandFailed, EmbeddedUnavailable) as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_FAILED
