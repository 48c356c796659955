"""`make bench`'s import rows: a catalog of 5,000 sections (1,000 courses) and a roster of
50,000 students written as CSV files, imported as `coursereg import` imports them (read,
every row checked, COPY, Redis pipelines) into a fresh database and key prefix; then the
same two files again, which must change nothing. Issue 15's target: both first imports
together under 60 s.

Alone: `python -m bench.imports` (DATABASE_URL / REDIS_URL, this machine's by default)."""

from __future__ import annotations

import asyncio
import csv
import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bench.measure import Result
from bench.replica import bench_settings, drop_database, prepare_database
from domain.imports import CATALOG_COLUMNS, STUDENT_COLUMNS
from domain.model import Actor, Role
from infrastructure.cli.imports import ImportReport, import_catalog, import_students, read_records
from infrastructure.container import Container
from infrastructure.settings import Settings

COURSES = 1_000
SECTIONS_PER_COURSE = 5
STUDENTS = 50_000
TARGET_SECONDS = 60.0
SEMESTER = "Bench import semester"
SLOTS = ("08:00-08:50", "09:00-09:50", "10:00-10:50", "13:00-14:15", "15:00-16:15")
DAYS = ("MWF", "TR", "MW", "F", "T")
SIZES = (10, 20, 25, 30, 40, 60, 120)


def write_catalog(path: Path, rng: random.Random) -> int:
    """The catalog file: one row per section; the course's fields repeat on its rows."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CATALOG_COLUMNS)
        rows = 0
        for c in range(COURSES):
            code = f"BI{c:04d}"
            prerequisites = f"BI{c - 10:04d}" if c >= 10 and c % 3 == 0 else ""
            credits = rng.choice(("3", "4", "1.5"))
            for s in range(1, SECTIONS_PER_COURSE + 1):
                meeting = f"{DAYS[s - 1]} {SLOTS[s - 1]} Room {rng.randrange(100, 400)}"
                writer.writerow(
                    [
                        SEMESTER,
                        code,
                        f"Bench course {c}",
                        credits,
                        prerequisites,
                        f"{s:03d}",
                        rng.choice(SIZES),
                        meeting,
                        "001" if s > 1 else "",  # the other sections need the lecture
                        rng.choice(("", "50")),
                        rng.choice(("AUTO_ENROLL", "OFFER")),
                        "",
                    ]
                )
                rows += 1
    return rows


def write_students(path: Path, rng: random.Random) -> int:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(STUDENT_COLUMNS)
        for n in range(STUDENTS):
            writer.writerow(
                [
                    f"BI{n:07d}",
                    rng.choice(("Ada", "Alan", "Grace", "Edsger")),
                    rng.choice(("Lovelace", "Turing", "Hopper", "Dijkstra")),
                    f"bi{n:07d}@bench.test",
                    "active" if rng.random() < 0.97 else "suspended",
                    rng.choice(("18", "18", "18", "21")),
                ]
            )
    return STUDENTS


def row(key: str, title: str, rows: int, seconds: float, report: ImportReport) -> Result:
    return Result(
        key=key,
        title=title,
        layer="import",
        throughput=rows / seconds,
        unit="rows/s",
        count=rows,
        seconds=round(seconds, 3),
        invariants={
            "added": report.added,
            "changed": report.changed,
            "refused": len(report.refused),
        },
    )


async def measure(settings: Settings, folder: Path) -> list[Result]:
    """Into the (fresh) database and key prefix of `settings`."""
    rng = random.Random(15)
    catalog_file, roster_file = folder / "catalog.csv", folder / "students.csv"
    sections = write_catalog(catalog_file, rng)
    students = write_students(roster_file, rng)
    container = await Container.open(settings)
    try:
        await container.state.ensure()
        now = datetime.now(UTC)
        await container.catalog.create_semester(
            Actor("bench", Role.STAFF),
            SEMESTER,
            date(2031, 1, 10),
            date(2031, 5, 10),
            now - timedelta(hours=1),
            now + timedelta(days=30),
        )
        results = []
        for key, title, path, kind, count in (
            (
                "import_catalog",
                "Import: 5,000 sections of 1,000 courses",
                catalog_file,
                0,
                sections,
            ),
            ("import_students", "Import: 50,000 students", roster_file, 1, students),
            (
                "reimport_catalog",
                "Import again: the same catalog (no-op)",
                catalog_file,
                0,
                sections,
            ),
            (
                "reimport_students",
                "Import again: the same roster (no-op)",
                roster_file,
                1,
                students,
            ),
        ):
            started = time.perf_counter()
            records = read_records(path)
            importer = import_catalog if kind == 0 else import_students
            report = await importer(container, records)
            seconds = time.perf_counter() - started
            results.append(row(key, title, count, seconds, report))
            print(
                f"          {key}: {count:,} rows in {seconds:.2f} s ({report.summary})", flush=True
            )
        first = results[0].seconds + results[1].seconds
        met = "met" if first < TARGET_SECONDS else "NOT met"
        results[1].notes = (
            f"catalog and roster together in {first:.1f} s, from reading the files to the live "
            f"state (target: under {TARGET_SECONDS:.0f} s, {met}); fresh database and key prefix"
        )
        results[1].invariants["both_seconds"] = round(first, 2)
        return results
    finally:
        await container.close()


async def measure_fresh(folder: Path) -> list[Result]:
    """In a database and key prefix of its own, dropped afterwards."""
    settings = bench_settings()
    await prepare_database(settings)
    try:
        return await measure(settings, folder)
    finally:
        await drop_database(settings)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="coursereg-bench-import-") as tmp:
        results = asyncio.run(measure_fresh(Path(tmp)))
    for result in results:
        print(f"{result.key}: {result.count:,} rows in {result.seconds:.2f} s, {result.invariants}")
    print(results[1].notes)


if __name__ == "__main__":
    main()
