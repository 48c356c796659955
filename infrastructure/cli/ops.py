"""The operator's long-running commands: `seed-demo`, `reconcile` and `rebuild-cache`, each
with a progress bar on a terminal and an exit code a script can act on (0 ok, 1 drift found
or failure, 2 usage or settings)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, TypeVar, cast

from tqdm import tqdm

from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` and `token` stay quick
    from infrastructure.cli.demo import DemoCatalog
    from infrastructure.container import Container
    from infrastructure.state.reconcile import Report
    from infrastructure.state.recovery import Cuts

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SHOWN_DRIFTS = 20
# An operator command waits this long for Redis, then fails naming it.
REDIS_WAIT_SECONDS = 5.0
T = TypeVar("T")


class CommandFailed(Exception):
    """Ends a command with exit code 1 and this message."""


@contextlib.contextmanager
def progress_bar(description: str, unit: str, total: int | None = None) -> Iterator[tqdm]:
    """On stderr, and only on a terminal (tqdm's disable=None)."""
    with tqdm(total=total, desc=description, unit=unit, disable=None, file=sys.stderr) as bar:
        yield bar


def advance(bar: tqdm) -> Callable[[int, int], None]:
    """A (done in this step, total) callback moving `bar`."""

    def step(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done)

    return step


def with_container(settings: Settings, work: Callable[[Container], Awaitable[T]]) -> T:
    """Run `work` with this process's pools, once the database is at the migration head."""
    from infrastructure.container import Container
    from infrastructure.postgres.migrate import current_revision, head_revision

    async def run() -> T:
        container = await Container.open(settings, wait_seconds=REDIS_WAIT_SECONDS)
        try:
            revision = await current_revision(container.engine)
            if revision != head_revision():
                raise CommandFailed(
                    f"the database is at migration {revision}, not {head_revision()}: "
                    "run `coursereg migrate` first"
                )
            return await work(container)
        finally:
            await container.close()

    return asyncio.run(run())


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


# -- seed-demo ---------------------------------------------------------------------------


def demo_urls(settings: Settings, semester: object) -> list[str]:
    base = f"http://{settings.host}:{settings.port}"
    return [f"GraphiQL:  {base}/graphql", f"dashboard: {base}/dashboard?semester={semester}"]


def seed(settings: Settings) -> DemoCatalog:
    from infrastructure.cli.demo import seed_demo, total_steps

    async def work(container: Container) -> DemoCatalog:
        with progress_bar("seeding the demo catalog", "row", total_steps()) as bar:
            return await seed_demo(container, bar.update)

    return with_container(settings, work)


def describe_demo(settings: Settings, demo: DemoCatalog) -> list[str]:
    from domain.model import Role
    from infrastructure.auth import TokenService

    done = "seeded" if demo.seeded else "already there"
    lines = [
        f"demo catalog {done}: {demo.courses} courses, {demo.sections} sections, "
        f"{demo.students} students in semester {demo.semester_id}",
        "staff token (paste as Authorization: Bearer <token> in GraphiQL's Headers):",
        "  " + TokenService(settings.jwt_secret).issue(Role.STAFF, "demo-staff", 8 * 3600),
    ]
    if demo.sample_student is not None:
        lines.append(f"a student to act as: {demo.sample_student}")
    return [*lines, *demo_urls(settings, demo.semester_id)]


def cmd_seed_demo(args: argparse.Namespace, settings: Settings) -> int:
    print("\n".join(describe_demo(settings, seed(settings))))
    return EXIT_OK


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


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    seed_demo_parser = sub.add_parser(
        "seed-demo",
        help="load a demo catalog: 1 open semester, 50 courses, 200 sections, 5,000 students",
        description="Load the demo catalog once (a second run changes nothing) and print a "
        "staff token and the URLs to open.",
    )
    seed_demo_parser.set_defaults(run=cmd_seed_demo)

    reconcile = sub.add_parser(
        "reconcile",
        help="compare Redis's live state with Postgres; exit 1 on drift",
        description="Compare every section's seats, enrolled set and waitlist order in Redis "
        "with Postgres, once the streams are drained. Exit 0: no drift; 1: drift found (or "
        "left after --repair); 2: usage or settings.",
    )
    reconcile.add_argument(
        "--repair",
        action="store_true",
        help="rebuild the shards of drifted sections from Postgres, as rebuild-cache does",
    )
    reconcile.add_argument(
        "--force", action="store_true", help="compare although the streams are not drained"
    )
    reconcile.add_argument(
        "--wait", type=float, default=30.0, help="seconds to wait for the streams to drain"
    )
    reconcile.set_defaults(run=cmd_reconcile)

    rebuild = sub.add_parser(
        "rebuild-cache",
        help="rebuild Redis's live state from Postgres",
        description="Take every shard's ready marker down under the rebuild lock (register and "
        "drop answer UNAVAILABLE meanwhile), wait until Postgres applied what the streams held "
        "at that moment (this command persists them too, beside the workers), then load the "
        "live state and every student's rule state from Postgres and put the markers back. "
        "Exit 1, with the live state untouched, if Postgres does not catch up within --wait.",
    )
    rebuild.add_argument(
        "--wait", type=float, default=60.0, help="seconds to wait for the streams to drain"
    )
    rebuild.set_defaults(run=cmd_rebuild_cache)
