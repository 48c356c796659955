"""`coursereg tickets --semester <id> <file.csv>`: time tickets in bulk, from a registrar's
spreadsheet of `student_number,opens_at,closes_at` rows (ISO 8601 with an offset; a header
row is skipped). Every row is checked first: any bad one is reported with its line number,
nothing changes and the exit code is 2. Otherwise all are written in one transaction and
each student's rule state is mirrored into Redis, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from domain.errors import NotFound
from domain.model import Actor, Role
from domain.time_tickets import FIELDS, BadRows, TicketRow
from infrastructure.cli.command import (
    EXIT_OK,
    EXIT_USAGE,
    Command,
    arg,
    progress_bar,
    with_container,
)
from infrastructure.cli.imports import UnreadableFile, read_records
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from infrastructure.container import Container

OPERATOR = Actor("coursereg-tickets", Role.STAFF)


def read_rows(path: Path) -> list[TicketRow]:
    """The file's records with the line each starts on; blank lines and a header skipped."""
    rows = [TicketRow(r.line, r.fields) for r in read_records(path)]
    if rows and rows[0].student_number.lower() == FIELDS[0]:
        rows = rows[1:]
    return rows


def report(problems: list[tuple[int, str]], path: Path) -> None:
    for line, message in problems:
        print(f"{path}:{line}: {message}", file=sys.stderr)
    print(
        f"coursereg: {len(problems)} bad rows in {path}; no time ticket was changed",
        file=sys.stderr,
    )


def cmd_tickets(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    try:
        rows = read_rows(path)
    except UnreadableFile as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def work(container: Container) -> int:
        admin = container.rules_admin
        try:
            with progress_bar("setting time tickets", "student", len(rows)) as bar:
                count = await admin.set_time_tickets(OPERATOR, args.semester, rows, bar.update)
        except BadRows as exc:
            report(exc.problems, path)
            return EXIT_USAGE
        except NotFound as exc:
            print(f"coursereg: {exc.message}", file=sys.stderr)
            return EXIT_USAGE
        print(f"set {count} time tickets in semester {args.semester}")
        return EXIT_OK

    return with_container(settings, work)


TICKETS = Command(
    "tickets",
    "give students time tickets in bulk, from a CSV file",
    cmd_tickets,
    (
        arg("--semester", type=uuid.UUID, required=True, help="the semester's id"),
        arg("file", help="the CSV file"),
    ),
    description="Set each listed student's registration window in the semester from a CSV "
    "file of student_number,opens_at,closes_at rows (ISO 8601 with an offset, inside the "
    "semester's window; a header row is skipped). A bad row (reported with its line) "
    "changes nothing and exits 2.",
)
