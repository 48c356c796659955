"""`coursereg export registrations --semester ID`: a semester's enrolled and waitlisted
students, per student and section, for the student information system; CSV with a header
or JSON lines, to stdout or a file. Never behind an answer: the streams' last entries are
taken when it starts, and it exports only once Postgres applied them (waiting up to
--wait), so every registration answered before the export began is in the file."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from infrastructure.cli.command import (
    EXIT_OK,
    EXIT_USAGE,
    Command,
    CommandFailed,
    arg,
    with_container,
)
from infrastructure.cli.ops import streams_lag
from infrastructure.settings import Settings

if TYPE_CHECKING:  # imported when a command runs: `coursereg --help` stays quick
    from infrastructure.container import Container


def semester_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--semester must be a semester's id (a UUID), not {text!r}"
        ) from None


@contextlib.contextmanager
def destination(path: str | None) -> Iterator[TextIO]:
    """stdout, or a file written beside its final name and moved there once complete: a
    failed export never leaves half a file where the last good one was."""
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    partial = f"{path}.partial"
    try:
        with open(partial, "w", newline="", encoding="utf-8") as out:
            yield out
        os.replace(partial, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(partial)


async def drained_since_start(container: Container, seconds: float) -> None:
    """The streams' last entries now, then wait (up to `seconds`) until the persister's
    applied offsets reach them; else fail naming how many entries are not applied."""
    cuts = await container.state.cuts(range(container.keys.shards))
    deadline = time.monotonic() + seconds
    while not await container.state.drained(cuts):
        if time.monotonic() >= deadline:
            behind = await streams_lag(container)
            raise CommandFailed(
                f"{behind} stream entries are not applied to Postgres yet (is a worker "
                f"running?), so an export now would miss answered registrations; "
                f"pass --wait SECONDS to wait for them"
            )
        await asyncio.sleep(0.1)


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from infrastructure.postgres.export import COLUMNS, registrations, semester_name

    async def work(container: Container) -> int:
        name = await semester_name(container.engine, args.semester)
        if name is None:
            print(f"coursereg: no semester {args.semester}", file=sys.stderr)
            return EXIT_USAGE
        await drained_since_start(container, args.wait)
        count = 0
        with destination(args.output) as out:
            if args.format == "csv":
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                async for record in registrations(container.engine, args.semester):
                    writer.writerow(record)  # None is written empty
                    count += 1
            else:
                async for record in registrations(container.engine, args.semester):
                    line = dict(zip(COLUMNS, record, strict=True))
                    out.write(json.dumps(line, separators=(",", ":")) + "\n")
                    count += 1
        where = args.output or "stdout"
        print(f"exported {count} registrations of {name} to {where}", file=sys.stderr)
        return EXIT_OK

    return with_container(settings, work)


EXPORT = Command(
    "export",
    "write a semester's registrations for the student information system",
    cmd_export,
    (
        arg("what", choices=["registrations"], help="what to export"),
        arg("--semester", type=semester_id, required=True, help="the semester's id"),
        arg(
            "--format",
            choices=["csv", "jsonl"],
            default="csv",
            help="CSV with a header (the default) or one JSON object per line",
        ),
        arg("--output", metavar="FILE", help="write here instead of stdout"),
        arg(
            "--wait",
            type=float,
            default=0.0,
            help="seconds to wait for the workers to persist what was answered before the "
            "export began (default: refuse at once if they have not)",
        ),
    ),
    description="One record per student and section of the semester, enrolled or "
    "waitlisted (with the position in line, the time joined and an offer's expiry), with "
    "the natural keys (student number, course code, section number, semester name) and the "
    "ids. It exports only once Postgres has applied every stream entry that existed when it "
    "began, so the file is never behind an answer; else exit 1 naming how many are not "
    "applied. Exit 2: a bad or unknown --semester.",
)
