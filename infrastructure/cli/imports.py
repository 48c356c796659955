"""`coursereg import catalog FILE` and `coursereg import students FILE`: the schedule of
classes and the roster from a student information system's CSV files (columns: README,
"Catalog and roster import"; rows checked and planned in domain/imports.py).

Every row is checked, against the file and the record, before anything is written: bad rows
are listed as `file:line: what is wrong` and the command exits 2 with nothing changed (a seat
count below the seats already taken is such a row). Then, in order:

1. one transaction (COPY) writes the new courses and sections, with their prerequisites,
   meetings and links, and the fields no live state holds (titles, active flags; names and
   addresses of students);
2. Redis follows at once: new sections are opened (pipelined, as open_section does), new
   students get their status and rule state (pipelined);
3. each change of an existing row the live state holds goes through the staff use case the
   API's mutations use: setCourseRules, setSectionRules, setSectionCapacity (a raise
   promotes from the line in FIFO order), setStudentStatus, setMaxCredits. A use case that
   refuses a row then (a rush filled the section since the check) leaves the others
   applied; the refused rows are listed and the command exits 1.

`--dry-run` prints the plan and writes nothing; `--prune` deactivates what the file leaves
out (sections of the file's semesters; students whose status is active become inactive).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domain.errors import DomainError
from domain.imports import (
    CatalogPlan,
    CatalogWorld,
    KnownSection,
    Record,
    StudentPlan,
    catalog_semesters,
    plan_catalog,
    plan_students,
)
from domain.model import Actor, Role
from domain.rules import DEFAULT_MAX_CREDITS, StudentRules
from domain.time_tickets import BadRows
from infrastructure.cli.command import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    Command,
    CommandFailed,
    arg,
    progress_bar,
    with_container,
)
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from tqdm import tqdm

    from infrastructure.container import Container

log = logging.getLogger("coursereg.import")
OPERATOR = Actor("coursereg-import", Role.STAFF)
AT_ONCE = 16  # use case calls in flight at once
JSON_EVERY_SECONDS = 0.5


class UnreadableFile(Exception):
    pass


def read_records(path: Path) -> list[Record]:
    """The file's records, each with the physical line it starts on (the header is line 1
    when first); blank lines are skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            records: list[Record] = []
            line = 1
            for fields in reader:
                if any(f.strip() for f in fields):
                    records.append(Record(line, tuple(fields)))
                line = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UnreadableFile(f"cannot read {path}: {exc}") from exc
    return records


class ImportProgress:
    """Phase by phase: tqdm's bar on a terminal (as the other commands), and with
    LOG_FORMAT=json one JSON line per phase step (at most every half second, and at each
    phase's end)."""

    def __init__(self, kind: str, bar: tqdm | None = None, json_lines: bool = False) -> None:
        self.kind, self.bar, self.json_lines = kind, bar, json_lines
        self.name, self.total, self.done, self.logged = "", 0, 0, 0.0

    def phase(self, name: str, total: int) -> None:
        self.end()
        self.name, self.total, self.done = name, total, 0
        if self.bar is not None:
            self.bar.reset(total=total)
            self.bar.set_description(f"import {self.kind}: {name}")
        self._log(force=True)

    def __call__(self, count: int) -> None:
        self.done += count
        if self.bar is not None:
            self.bar.update(count)
        self._log()

    def end(self) -> None:
        if self.name and self.done != self.total:
            self.done = self.total
            self._log(force=True)

    def _log(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.json_lines or (not force and now - self.logged < JSON_EVERY_SECONDS):
            return
        self.logged = now
        log.info(
            "import %s: %s %d/%d",
            self.kind,
            self.name,
            self.done,
            self.total,
            extra={"import": self.kind, "phase": self.name, "done": self.done, "total": self.total},
        )


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    added: int
    changed: int
    removed: int
    summary: str
    plan: list[str] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def written_together() -> AsyncIterator[None]:
    """The new rows' transaction: a key someone else took since the check (a staff mutation
    meanwhile) rolls all of it back."""
    from infrastructure.postgres.imports import ImportConflict

    try:
        yield
    except ImportConflict as exc:
        raise CommandFailed(
            "the record changed while importing (a row the file adds was made meanwhile): "
            f"nothing was written; run the import again ({exc})"
        ) from exc


async def _each(
    items: Sequence[Any],
    apply: Callable[[Any], Awaitable[object]],
    line_of: Callable[[Any], int],
    refused: list[tuple[int, str]],
    progress: ImportProgress,
) -> None:
    """Through a use case, AT_ONCE in flight; a refusal is that row's, the rest go on."""

    async def one(item: Any) -> None:
        try:
            await apply(item)
        except DomainError as exc:
            refused.append((line_of(item), exc.message))
        progress(1)

    for i in range(0, len(items), AT_ONCE):
        await asyncio.gather(*(one(item) for item in items[i : i + AT_ONCE]))


# -- the catalog ---------------------------------------------------------------------------


async def catalog_world(container: Container, records: Sequence[Record]) -> CatalogWorld:
    from infrastructure.postgres.imports import PostgresImports

    store = PostgresImports(container.sessions)
    semesters = await store.semesters()
    sections = await store.sections(sorted(catalog_semesters(records, semesters)))
    live = await container.seats.seats_taken([s.id for s in sections])
    known: dict[tuple[uuid.UUID, str, str], KnownSection] = {}
    for section, state in zip(sections, live, strict=True):
        if state is not None:  # the live total leads the record's until the stream is applied
            section = dataclasses.replace(section, seats=state[0], taken=state[1])
        known[(section.semester_id, section.course_code, section.number)] = section
    return CatalogWorld(semesters, await store.courses(), known)


async def import_catalog(
    container: Container,
    records: Sequence[Record],
    dry_run: bool = False,
    prune: bool = False,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """BadRows when a row is bad (nothing written)."""
    from infrastructure.postgres.imports import PostgresImports

    progress = progress or ImportProgress("catalog")
    progress.phase("checking rows", len(records))
    plan = plan_catalog(records, await catalog_world(container, records), prune)
    progress(len(records))
    if dry_run:
        return _catalog_report(plan, dry_run=True)
    store = PostgresImports(container.sessions)
    progress.phase("writing new rows", len(plan.new_courses) + len(plan.new_sections))
    async with written_together():
        await store.write_catalog(plan, progress)
    reopened = [u.id for u in plan.section_updates if u.active]
    flagged = reopened + [r.id for r in plan.removed_sections]
    opened = [s.id for s in plan.new_sections] + flagged
    progress.phase("opening sections", len(opened))
    for i in range(0, len(opened), 1000):
        setups = await store.setups(opened[i : i + 1000])
        await container.seats.open_sections(setups)
        progress(len(setups))
    if flagged:
        await container.sections.announce(flagged)
    refused: list[tuple[int, str]] = []
    await _apply_catalog_changes(container, plan, refused, progress)
    report = _catalog_report(plan, dry_run=False)
    report.refused = sorted(refused)
    progress.end()
    return report


async def _apply_catalog_changes(
    container: Container,
    plan: CatalogPlan,
    refused: list[tuple[int, str]],
    progress: ImportProgress,
) -> None:
    courses = [
        u for u in plan.course_updates if u.credits is not None or u.prerequisites is not None
    ]
    ruled = [u for u in plan.section_updates if u.rules is not None]
    seated = [u for u in plan.section_updates if u.seats is not None]
    progress.phase("applying changes", len(courses) + len(ruled) + len(seated))
    admin, catalog = container.rules_admin, container.catalog
    request_id = f"import-{uuid.uuid4().hex[:12]}"
    await _each(
        courses,
        lambda u: admin.set_course_rules(OPERATOR, u.id, u.credits, u.prerequisites),
        lambda u: u.change.line,
        refused,
        progress,
    )
    await _each(
        ruled,
        lambda u: admin.set_section_rules(OPERATOR, u.id, u.rules),
        lambda u: u.change.line,
        refused,
        progress,
    )
    await _each(
        seated,
        lambda u: catalog.set_section_capacity(OPERATOR, u.id, u.seats, request_id),
        lambda u: u.change.line,
        refused,
        progress,
    )


def _catalog_report(plan: CatalogPlan, dry_run: bool) -> ImportReport:
    return ImportReport(
        "catalog",
        dry_run,
        plan.added,
        plan.changed,
        plan.removed,
        plan.summary(),
        plan.describe() if dry_run else [],
    )


# -- the roster ----------------------------------------------------------------------------


async def import_students(
    container: Container,
    records: Sequence[Record],
    dry_run: bool = False,
    prune: bool = False,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """BadRows when a row is bad (nothing written)."""
    from infrastructure.postgres.imports import PostgresImports

    progress = progress or ImportProgress("students")
    store = PostgresImports(container.sessions)
    progress.phase("checking rows", len(records))
    plan = plan_students(records, await store.students(), prune)
    progress(len(records))
    if dry_run:
        return _student_report(plan, dry_run=True)
    progress.phase("writing new rows", len(plan.new))
    async with written_together():
        await store.write_students(plan, progress)
    # As createStudent: status and a loaded, empty rule state; the credit limit only where it
    # is not the default, which the scripts assume where the slot has none.
    limited = [
        StudentRules(s.id, max_credits=s.max_credits)
        for s in plan.new
        if s.max_credits != DEFAULT_MAX_CREDITS
    ]
    progress.phase("loading new students into Redis", len(plan.new) + len(limited))
    await container.students.store_all(((s.id, s.status) for s in plan.new), created=True)
    progress(len(plan.new))
    await container.rules.mirror_many(limited)
    progress(len(limited))
    refused: list[tuple[int, str]] = []
    await _apply_student_changes(container, plan, refused, progress)
    report = _student_report(plan, dry_run=False)
    report.refused = sorted(refused)
    progress.end()
    return report


async def _apply_student_changes(
    container: Container,
    plan: StudentPlan,
    refused: list[tuple[int, str]],
    progress: ImportProgress,
) -> None:
    statuses = [u for u in plan.updates if u.status is not None]
    limits = [u for u in plan.updates if u.max_credits is not None]
    progress.phase("applying changes", len(statuses) + len(limits) + len(plan.removed))
    catalog, admin = container.catalog, container.rules_admin
    await _each(
        statuses,
        lambda u: catalog.set_student_status(OPERATOR, u.id, u.status),
        lambda u: u.change.line,
        refused,
        progress,
    )
    await _each(
        limits,
        lambda u: admin.set_max_credits(OPERATOR, u.id, u.max_credits),
        lambda u: u.change.line,
        refused,
        progress,
    )
    await _each(
        plan.removed,
        lambda r: catalog.set_student_status(OPERATOR, r.id, "inactive"),
        lambda r: 0,
        refused,
        progress,
    )


def _student_report(plan: StudentPlan, dry_run: bool) -> ImportReport:
    return ImportReport(
        "students",
        dry_run,
        plan.added,
        plan.changed,
        len(plan.removed),
        plan.summary(),
        plan.describe() if dry_run else [],
    )


# -- the command ---------------------------------------------------------------------------

IMPORTERS = {"catalog": import_catalog, "students": import_students}


def print_problems(path: Path, problems: Sequence[tuple[int, str]]) -> None:
    for line, message in problems:
        print(f"{path}:{line}: {message}", file=sys.stderr)


def print_report(path: Path, report: ImportReport) -> None:
    if report.dry_run:
        for line in report.plan:
            print(line)
        print(f"dry run, nothing written: would be {report.summary}")
        return
    print(f"imported {report.kind} from {path}: {report.summary}")
    if report.refused:
        print_problems(path, report.refused)
        print(
            f"coursereg: {len(report.refused)} rows refused as they were applied; the rest "
            "of the file is imported",
            file=sys.stderr,
        )


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    try:
        records = read_records(path)
    except UnreadableFile as exc:
        print(f"coursereg: {exc}", file=sys.stderr)
        return EXIT_USAGE
    importer = IMPORTERS[args.kind]

    async def work(container: Container) -> int:
        with progress_bar(f"import {args.kind}", "row") as bar:
            progress = ImportProgress(args.kind, bar, settings.log_format == "json")
            try:
                report = await importer(container, records, args.dry_run, args.prune, progress)
            except BadRows as exc:
                print_problems(path, exc.problems)
                print(
                    f"coursereg: {len(exc.problems)} bad rows in {path}; nothing was imported",
                    file=sys.stderr,
                )
                return EXIT_USAGE
        print_report(path, report)
        return EXIT_FAILED if report.refused else EXIT_OK

    return with_container(settings, work)


IMPORT = Command(
    "import",
    "import the catalog or the roster from a CSV file (courses and sections, or students)",
    cmd_import,
    (
        arg("kind", choices=sorted(IMPORTERS), help="what the file holds"),
        arg("file", help="the CSV file, with a header row (columns: README)"),
        arg(
            "--dry-run",
            action="store_true",
            help="print what would be added, changed and (with --prune) deactivated; write nothing",
        ),
        arg(
            "--prune",
            action="store_true",
            help="deactivate what the file leaves out: sections of the file's semesters, "
            "active students (made inactive); nothing is deleted",
        ),
    ),
    description="Add and update courses and sections (catalog) or students (students) from "
    "a CSV file, by natural key: course code; semester + course code + section number; "
    "student number. Every row is checked first: bad rows are listed as file:line: what is "
    "wrong, exit 2, nothing written. Importing the same file again changes nothing. Exit 1 "
    "when a use case refused a row as it was applied (the rest is imported).",
)
