"""The SIS round trip: a catalog and a roster imported from CSV files by `coursereg import`,
registrations made through the API, then `coursereg export registrations`: the export is
exactly the registrations that went in, by the SIS's natural keys (student number, course
code, section number), with the line's order kept."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from tests.client import outcome
from tests.conftest import Api, Catalog, Worker
from tests.integration.test_cli import acoursereg
from tests.integration.test_import import (
    CATALOG_HEADER,
    STUDENT_HEADER,
    csv_text,
    fetch,
    run_catalog,
    run_students,
    section_ids,
    write,
)

SEATS = {"BIO100": 2, "CHEM100": 3}  # course code -> seats of its section 001
ROSTER = [f"R{n:04}" for n in range(8)]
# The registrations that go in, in order: (student number, course code).
WANTED = [(s, "BIO100") for s in ROSTER[:5]] + [(s, "CHEM100") for s in ROSTER[3:8]]


@dataclass(frozen=True)
class Id:
    id: UUID


def expected() -> set[tuple[str, str, str, str, str]]:
    """Each section's first `seats` students enrolled, the rest in line by arrival."""
    rows = set()
    for course, seats in SEATS.items():
        arrivals = [s for s, c in WANTED if c == course]
        for i, student in enumerate(arrivals):
            waiting = i >= seats
            status, rank = ("waitlisted", str(i - seats + 1)) if waiting else ("enrolled", "")
            rows.add((student, course, "001", status, rank))
    return rows


async def test_export_after_import_is_the_registrations_that_went_in(
    api: Api, catalog: Catalog, worker: Worker, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    catalog_file = write(
        tmp_path,
        "catalog.csv",
        csv_text(
            CATALOG_HEADER,
            [
                [semester.name, course, course.title(), "3", "", "001", seats, "", "", "", "", ""]
                for course, seats in SEATS.items()
            ],
        ),
    )
    roster_file = write(
        tmp_path,
        "students.csv",
        csv_text(
            STUDENT_HEADER,
            [[n, "Ann", n, f"{n.lower()}@uni.example", "active", "18"] for n in ROSTER],
        ),
    )
    assert (await run_catalog(api, catalog_file)).added
    assert (await run_students(api, roster_file)).added
    sections = {key: Id(value) for key, value in (await section_ids(api)).items()}
    rows = await fetch(api, "SELECT student_number, student_id FROM students")
    students = {r["student_number"]: Id(r["student_id"]) for r in rows}

    # One at a time: the order of arrival is the order in line.
    answers = [
        await outcome(api, students[number], sections[(course, "001")]) for number, course in WANTED
    ]
    assert answers == ["ENROLLED"] * 2 + ["WAITLISTED"] * 3 + ["ENROLLED"] * 3 + ["WAITLISTED"] * 2

    done = await acoursereg(
        api.container.settings,
        "export",
        "registrations",
        "--semester",
        str(semester.id),
        "--wait",
        "30",
    )
    assert done.returncode == 0, done.stderr
    records = list(csv.DictReader(io.StringIO(done.stdout)))
    got = {
        (
            r["student_number"],
            r["course_code"],
            r["section_number"],
            r["status"],
            r["waitlist_position"],
        )
        for r in records
    }
    assert len(records) == len(WANTED)
    assert got == expected()
    assert all(r["student_id"] == str(students[r["student_number"]].id) for r in records)
    assert {r["semester_name"] for r in records} == {semester.name}
    # The same files again change nothing, and the export with them is the same file.
    assert not (await run_catalog(api, catalog_file)).changed
    again = await acoursereg(
        api.container.settings, "export", "registrations", "--semester", str(semester.id)
    )
    assert again.stdout == done.stdout
