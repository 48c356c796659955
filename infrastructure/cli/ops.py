"""The operator's commands: `migrate`, `token`, `reconcile` and `rebuild-cache`; the long ones
with a progress bar on a terminal, all with an exit code a script can act on (0 ok, 1 drift
found or failure, 2 usage or settings)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
import uuid
from typing import TYPE_CHECKING, cast

from domain.model import Role
from infrastructure.cli.command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    CommandFailed,
    advance,
    arg,
    progress_bar,
    with_container,
)
from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` and `token` stay quick
    from infrastructure.container import Container
    from infrastructure.state.reconcile import Report
    from infrastructure.state.recovery import Cuts

SHOWN_DRIFTS = 20


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
    if not settings.accepts_dev_tokens:
        print(
            "warning: this API accepts no HS256 development tokens (COURSEREG_OIDC_ISSUER is "
            "set and COURSEREG_DEV_TOKENS is not true): sign in through the provider",
            file=sys.stderr,
        )
    print(TokenService(settings.jwt_secret).issue(role, args.sub, args.ttl))
    return EXIT_OK


async def streams_lag(container: Container) -> int:
    """Changes answered but not yet persisted and acknowledged."""
    lag = await container.stream.lag(container.keys.shards)
    return cast(int, lag["unapplied"])  # pending entries are among them


async def wait_drained(container: Container, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while await streams_lag(container):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


# -- reconcile ---------------------------------------------------------------------------


def print_report(report: Report) -> None:
    for drift in report.drifted[:SHOWN_DRIFTS]:
        print(f"section {drift.section_id}: {'; '.join(drift.problems)}")
    if len(report.drifted) > SHOWN_DRIFTS:
        print(f"... and {len(report.drifted) - SHOWN_DRIFTS} more")
    print(f"{report.sections} sections checked, {len(report.drifted)} drifted")


async def drain_streams(container: Container, cuts: Cuts, seconds: float) -> bool:
    """Wait until Postgres applied the streams up to `cuts`, persisting them from this
    process too (a worker of its own beside the others, no sweeps): a rebuild never waits
    on workers that are not there. False if `seconds` passed first (Postgres away)."""
    from infrastructure.cli.worker import make_persister

    helper = make_persister(container, f"rebuild-{uuid.uuid4().hex[:8]}", sweep=False)
    stop = asyncio.Event()
    task = asyncio.create_task(helper.run(stop))
    try:
        return await container.state.wait_drained(cuts, seconds)
    finally:
        stop.set()
        await task


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.state.reconcile import Reconciler

    async def work(container: Container) -> int:
        if not args.force and not await wait_drained(container, args.wait):
            raise CommandFailed(
                f"{await streams_lag(container)} changes are not persisted yet, so Postgres is "
                "behind by design; wait for the workers, or pass --force"
            )
        checker = Reconciler(container.redis, container.keys, container.snapshot, container.state)
        with progress_bar("reconciling", "section") as bar:
            report = await checker.run(progress=advance(bar))
        print_report(report)
        if report.ok:
            return EXIT_OK
        if not args.repair:
            return EXIT_FAILED
        shards = checker.shards_of(report)
        drain = functools.partial(drain_streams, container, seconds=args.wait)
        rebuilt = await container.state.rebuild(drain, shards=shards)
        if rebuilt is None:
            raise CommandFailed(f"Postgres did not catch up within {args.wait}s; nothing repaired")
        print(
            f"shard(s) {', '.join(map(str, shards))} rebuilt from Postgres: "
            f"{rebuilt.sections} sections reloaded"
        )
        again = await checker.run()
        print(f"after the repair: {len(again.drifted)} drifted")
        return EXIT_OK if again.ok else EXIT_FAILED

    return with_container(settings, work)


# -- rebuild-cache -----------------------------------------------------------------------


def cmd_rebuild_cache(args: argparse.Namespace, settings: Settings) -> int:
    async def work(container: Container) -> int:
        drain = functools.partial(drain_streams, container, seconds=args.wait)
        with progress_bar("rebuilding the live state", "section") as bar:
            report = await container.state.rebuild(drain, progress=advance(bar))
        if report is None:
            raise CommandFailed(
                f"Postgres did not apply the streams within {args.wait}s (is it up?); the live "
                "state is as it was"
            )
        print(
            f"rebuilt {report.sections} sections of {len(report.shards)} shards and "
            f"{report.students} students from Postgres in {report.seconds:.2f}s"
        )
        return EXIT_OK

    return with_container(settings, work)


MIGRATE = Command("migrate", "create the database if missing; Alembic to head", cmd_migrate)
TOKEN = Command(
    "token",
    "print a JWT for GraphiQL and scripts",
    cmd_token,
    (
        arg("--role", choices=[r.value for r in Role], required=True),
        arg("--sub", required=True, help="student id, or any id for staff"),
        arg("--ttl", type=int, default=8 * 3600, help="lifetime in seconds"),
    ),
    servers=False,
)
RECONCILE = Command(
    "reconcile",
    "compare Redis's live state with Postgres; exit 1 on drift",
    cmd_reconcile,
    (
        arg(
            "--repair",
            action="store_true",
            help="rebuild the shards of drifted sections from Postgres, as rebuild-cache does",
        ),
        arg("--force", action="store_true", help="compare although the streams are not drained"),
        arg("--wait", type=float, default=30.0, help="seconds to wait for the streams to drain"),
    ),
    description="Compare every section's seats, enrolled set and waitlist order in Redis "
    "with Postgres, once the streams are drained. Exit 0: no drift; 1: drift found (or "
    "left after --repair); 2: usage or settings.",
)
REBUILD_CACHE = Command(
    "rebuild-cache",
    "rebuild Redis's live state from Postgres",
    cmd_rebuild_cache,
    (arg("--wait", type=float, default=60.0, help="seconds to wait for the streams to drain"),),
    description="Take every shard's ready marker down under the rebuild lock (register and "
    "drop answer UNAVAILABLE meanwhile), wait until Postgres applied what the streams held "
    "at that moment (this command persists them too, beside the workers), then load the "
    "live state and every student's rule state from Postgres and put the markers back. "
    "Exit 1, with the live state untouched, if Postgres does not catch up within --wait.",
)
