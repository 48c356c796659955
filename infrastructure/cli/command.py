"""What every `coursereg` subcommand shares: its declaration (one registry, in main.py),
the exit codes, and the helpers of the long-running ones (a progress bar on a terminal, the
process's pools once the database is at the migration head)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm import tqdm

from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` and `token` stay quick
    from infrastructure.container import Container

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# An operator command waits this long for Redis, then fails naming it.
REDIS_WAIT_SECONDS = 5.0
T = TypeVar("T")

Run = Callable[[argparse.Namespace, Settings], int]


class CommandFailed(Exception):
    """Ends a command with exit code 1 and this message."""


@dataclass(frozen=True, slots=True)
class Argument:
    """One `add_argument` call: its flags or name, and its keywords."""

    names: tuple[str, ...]
    options: dict[str, Any]


def arg(*names: str, **options: Any) -> Argument:
    return Argument(names, options)


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: its name, its help, its arguments and what it runs. `servers`: it talks
    to PostgreSQL and Redis, so with DATABASE_URL / REDIS_URL unset it gets the embedded
    servers under COURSEREG_DATA_DIR (infrastructure/cli/embedded.py)."""

    name: str
    help: str
    run: Run
    arguments: tuple[Argument, ...] = ()
    description: str | None = None
    servers: bool = True

    def add_to(self, sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = sub.add_parser(self.name, help=self.help, description=self.description)
        for argument in self.arguments:
            parser.add_argument(*argument.names, **argument.options)
        parser.set_defaults(command_spec=self)


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
