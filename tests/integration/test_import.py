"""`coursereg import catalog|students FILE`: a registrar's CSV files into the record and the
live state. The import runs in process (import_catalog / import_students, as the command
calls them) except for one subprocess run that checks the exit codes and the output.

What it shows: new sections are open for registration at once; the same file twice is a
no-op (Postgres and Redis unchanged); a changed file updates by natural key; --dry-run
prints the plan and writes nothing; --prune deactivates what the file leaves out; a
capacity raise promotes from the line in FIFO order, a lowered one below enrolment is a bad
row; status and credit limit changes reach Redis; an import while a rush runs changes no
answered seat."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import pytest

from domain.time_tickets import BadRows
from infrastructure.cli.imports import (
    ImportReport,
    import_catalog,
    import_students,
    print_report,
    read_records,
)
from tests.client import outcome, register, registered
from tests.conftest import Api, Catalog, Worker
from tests.footprint import footprint
from tests.integration.test_cli import acoursereg
from tests.integration.test_rules_catalog import student_hash

CATALOG_HEADER = (
    "semester,course_code,title,credits,prerequisites,section_number,seats,meetings,"
    "linked_sections,waitlist_capacity,waitlist_mode,offer_hours"
)
STUDENT_HEADER = "student_number,first_name,last_name,email,status,credit_limit"


def csv_text(header: str, rows: list[list[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header.split(","))
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


async def run_catalog(
    api: Api, path: Path, dry_run: bool = False, prune: bool = False
) -> ImportReport:
    return await import_catalog(api.container, read_records(path), dry_run, prune)


async def run_students(
    api: Api, path: Path, dry_run: bool = False, prune: bool = False
) -> ImportReport:
    return await import_students(api.container, read_records(path), dry_run, prune)


def catalog_rows(term: str, seats: int = 30) -> list[list[Any]]:
    return [
        [term, "MATH101", "Calculus I", "4", "", "001", seats, "MWF 09:00-09:50 Room 101", "",
         "", "", ""],
        [term, "MATH201", "Calculus II", "4", "MATH101", "001", 25,
         "TR 13:00-14:15 Hall B; F 10:00-10:50", "002", "5", "OFFER", "48"],
        [term, "MATH201", "Calculus II", "4", "MATH101", "002", 25, "W 15:00-16:50 Lab 3",
         "", "", "AUTO_ENROLL", ""],
    ]  # fmt: skip


async def section_ids(api: Api) -> dict[tuple[str, str], uuid.UUID]:
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT c.course_code, s.section_number, s.section_id FROM sections s "
            "JOIN courses c USING (course_id)"
        )
    finally:
        await connection.close()
    return {(r["course_code"], r["section_number"]): r["section_id"] for r in rows}


async def fetch(api: Api, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def test_a_catalog_file_adds_courses_and_sections_open_at_once(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    path = write(tmp_path, "catalog.csv", csv_text(CATALOG_HEADER, catalog_rows(semester.name)))
    report = await run_catalog(api, path)
    assert (report.added, report.changed, report.removed, report.refused) == (5, 0, 0, [])

    ids = await section_ids(api)
    rules = dict(
        zip(ids, await api.container.rule_records.section_rules(list(ids.values())), strict=True)
    )
    calc2 = rules[("MATH201", "001")]
    assert calc2 is not None and calc2.credits == 4.0 and calc2.offer_hours == 48
    assert calc2.waitlist_capacity == 5 and calc2.waitlist_mode.value == "OFFER"
    assert calc2.linked_sections == (ids[("MATH201", "002")],)
    assert [(m.days, m.start_time, m.end_time, m.location) for m in calc2.meetings] == [
        (("FRI",), "10:00", "10:50", None),
        (("TUE", "THU"), "13:00", "14:15", "Hall B"),
    ]
    assert calc2.prerequisites == (rules[("MATH101", "001")].course_id,)  # type: ignore[union-attr]
    states = await api.container.seats.states(list(ids.values()))
    assert sorted(s.total_seats for s in states if s) == [25, 25, 30]

    student = await catalog.student()
    section = SimpleNamespace(id=ids[("MATH101", "001")])
    assert await outcome(api, student, section) == "ENROLLED"


async def test_the_same_file_twice_changes_nothing(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    path = write(tmp_path, "catalog.csv", csv_text(CATALOG_HEADER, catalog_rows(str(semester.id))))
    students = write(
        tmp_path,
        "students.csv",
        csv_text(
            STUDENT_HEADER,
            [
                ["S001", "Ada", "Lovelace", "ada@uni.edu", "active", "18"],
                ["S002", "Alan", "Turing", "alan@uni.edu", "suspended", "21.5"],
            ],
        ),
    )
    await run_catalog(api, path)
    await run_students(api, students)
    before = await footprint(api)
    again = await run_catalog(api, path)
    assert (again.added, again.changed, again.removed) == (0, 0, 0)
    roster = await run_students(api, students)
    assert (roster.added, roster.changed, roster.removed) == (0, 0, 0)
    assert await footprint(api) == before


async def test_a_changed_file_updates_by_natural_key_through_the_use_cases(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    rows = catalog_rows(semester.name)
    await run_catalog(api, write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows)))
    rows[0][2] = "Calculus One"  # title
    rows[0][7] = "MWF 08:00-08:50 Room 101"  # meetings
    for row in rows[1:]:
        row[3] = "5"  # MATH201's credits, on both its rows
    rows[2][6] = 40  # seats
    rows.append([semester.name, "MATH101", "Calculus One", "4", "", "002", 10, "", "", "", "", ""])
    report = await run_catalog(api, write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows)))
    assert (report.added, report.changed, report.refused) == (1, 4, [])
    assert "4 courses" not in report.summary

    ids = await section_ids(api)
    (math101,) = await fetch(api, "SELECT course_name FROM courses WHERE course_code = 'MATH101'")
    assert math101["course_name"] == "Calculus One"
    setups = await api.container.sections.setups([ids[("MATH201", "002")], ids[("MATH101", "001")]])
    calc2, calc1 = setups
    assert calc2 is not None and calc2.rules is not None and calc2.rules.credits == 5.0
    assert calc1 is not None and calc1.rules is not None
    assert calc1.rules.meetings[0].start_time == "08:00"
    (state,) = await api.container.seats.states([ids[("MATH201", "002")]])
    assert state is not None and state.total_seats == 40
    assert ("MATH101", "002") in ids


async def test_dry_run_prints_the_plan_and_writes_nothing(
    api: Api, catalog: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    semester = await catalog.semester()
    rows = catalog_rows(semester.name)
    await run_catalog(api, write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows)))
    rows[0][6] = 35
    dropped = rows.pop(2)
    rows.append([semester.name, "PHYS101", "Mechanics", "3", "", "001", 12, "", "", "", "", ""])
    rows[1][8] = ""  # MATH201 001 no longer linked to the dropped 002
    before = await footprint(api)
    path = write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows))
    report = await run_catalog(api, path, dry_run=True, prune=True)
    assert await footprint(api) == before
    assert (report.added, report.changed, report.removed) == (2, 2, 1)
    plan = "\n".join(report.plan)
    assert "add course PHYS101 (line 4)" in plan
    assert f"add section PHYS101 001 of {semester.name} (line 4)" in plan
    assert f"change section MATH101 001 of {semester.name} (line 2): seats 30 -> 35" in plan
    assert "linked_sections 002 -> none" in plan
    assert f"deactivate section MATH201 {dropped[5]} of {semester.name} (not in the file)" in plan
    print_report(path, report)  # as the command prints it
    printed = capsys.readouterr().out.splitlines()
    assert printed[:-1] == report.plan
    assert printed[-1] == (
        "dry run, nothing written: would be 1 courses and 1 sections added, 0 courses and 2 "
        "sections changed, 1 sections deactivated"
    )


async def test_prune_deactivates_sections_and_students_the_file_leaves_out(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    rows = catalog_rows(semester.name)
    rows[1][4] = rows[2][4] = ""  # no prerequisite to meet
    await run_catalog(api, write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows)))
    ids = await section_ids(api)
    student = await catalog.student()  # enrolled in the section pruned: stays enrolled
    gone = SimpleNamespace(id=ids[("MATH201", "002")])
    assert await outcome(api, student, gone) == "ENROLLED"
    rows[1][8] = ""
    report = await run_catalog(
        api, write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows[:2])), prune=True
    )
    assert (report.removed, report.refused) == (1, [])
    (row,) = await fetch(api, "SELECT is_active FROM sections WHERE section_id = $1", gone.id)
    assert row["is_active"] is False
    other = await catalog.student()
    (result,) = await registered(api, other, gone)
    assert result["outcome"] == "REJECTED"
    assert await api.container.seats.ranks(student.id, [gone.id]) == [None]
    assert student.id.__str__() in await api.container.redis.smembers(
        api.container.keys.section(gone.id).enrolled
    )

    roster = [
        ["S001", "Ada", "Lovelace", "ada@uni.edu", "active", ""],
        ["S002", "Alan", "Turing", "alan@uni.edu", "active", ""],
    ]
    await run_students(api, write(tmp_path, "s1.csv", csv_text(STUDENT_HEADER, roster)))
    report = await run_students(
        api, write(tmp_path, "s2.csv", csv_text(STUDENT_HEADER, roster[:1])), prune=True
    )
    # Alan and the two students the test's catalog made are not in the file.
    assert report.removed == 3
    statuses = {
        r["student_number"]: r["enrollment_status"]
        for r in await fetch(api, "SELECT student_number, enrollment_status FROM students")
    }
    assert statuses["S001"] == "active" and statuses["S002"] == "inactive"
    assert statuses[student.student_number] == "inactive"


async def test_a_capacity_raise_promotes_from_the_line_in_fifo_order(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    rows = [[semester.name, "CS101", "Programming", "3", "", "001", 2, "", "", "", "", ""]]
    path = write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows))
    await run_catalog(api, path)
    section = SimpleNamespace(id=(await section_ids(api))[("CS101", "001")])
    students = await catalog.students(5)
    outcomes = [await outcome(api, s, section) for s in students]
    assert outcomes == ["ENROLLED"] * 2 + ["WAITLISTED"] * 3
    rows[0][6] = 4
    report = await run_catalog(api, write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows)))
    assert (report.changed, report.refused) == (1, [])
    enrolled = await api.container.redis.smembers(api.container.keys.section(section.id).enrolled)
    assert {str(s.id) for s in students[:4]} == set(enrolled)
    assert await api.container.seats.ranks(students[4].id, [section.id]) == [1]


async def test_seats_below_the_seats_taken_are_a_bad_row_and_nothing_is_written(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    rows = catalog_rows(semester.name, seats=3)
    await run_catalog(api, write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows)))
    section = SimpleNamespace(id=(await section_ids(api))[("MATH101", "001")])
    for student in await catalog.students(3):
        assert await outcome(api, student, section) == "ENROLLED"
    rows[0][6] = 2
    rows[1][2] = "Renamed"  # a change that must not be written either
    rows[2][2] = "Renamed"
    before = await footprint(api)
    with pytest.raises(BadRows) as refused:
        await run_catalog(api, write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows)))
    assert refused.value.problems == [
        (2, f"seats 2 is below the 3 seats taken in section MATH101 001 of {semester.name}")
    ]
    assert await footprint(api) == before


async def test_student_rows_reach_redis_status_and_credit_limit(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    await run_catalog(
        api, write(tmp_path, "c.csv", csv_text(CATALOG_HEADER, catalog_rows(semester.name)))
    )
    section = SimpleNamespace(id=(await section_ids(api))[("MATH101", "001")])
    roster = [
        ["S001", "Ada", "Lovelace", "ada@uni.edu", "active", "12"],
        ["S002", "Alan", "Turing", "alan@uni.edu", "ACTIVE", ""],
    ]
    report = await run_students(api, write(tmp_path, "s1.csv", csv_text(STUDENT_HEADER, roster)))
    assert report.added == 2
    known = {
        r["student_number"]: r["student_id"]
        for r in await fetch(api, "SELECT student_number, student_id FROM students")
    }
    ada, alan = (SimpleNamespace(id=known[n]) for n in ("S001", "S002"))
    assert float((await student_hash(api, ada.id))["maxcr"]) == 12
    assert (await student_hash(api, ada.id))["status"] == "active"

    roster[0][5] = "15"
    roster[1][4] = "inactive"
    roster[1][3] = "alan.turing@uni.edu"
    report = await run_students(api, write(tmp_path, "s2.csv", csv_text(STUDENT_HEADER, roster)))
    assert (report.added, report.changed, report.refused) == (0, 2, [])
    assert float((await student_hash(api, ada.id))["maxcr"]) == 15
    assert (await student_hash(api, alan.id))["status"] == "inactive"
    (email,) = await fetch(api, "SELECT email FROM students WHERE student_id = $1", alan.id)
    assert email["email"] == "alan.turing@uni.edu"
    body = await register(api, alan, section)
    assert body["errors"][0]["extensions"]["code"] == "STUDENT_NOT_ELIGIBLE"
    assert await outcome(api, ada, section) == "ENROLLED"


async def test_two_students_may_swap_addresses_in_one_file(api: Api, tmp_path: Path) -> None:
    roster = [
        ["S001", "Ada", "Lovelace", "a@uni.edu", "", ""],
        ["S002", "Alan", "Turing", "b@uni.edu", "", ""],
    ]
    await run_students(api, write(tmp_path, "s1.csv", csv_text(STUDENT_HEADER, roster)))
    roster[0][3], roster[1][3] = "b@uni.edu", "a@uni.edu"
    report = await run_students(api, write(tmp_path, "s2.csv", csv_text(STUDENT_HEADER, roster)))
    assert report.changed == 2
    rows = await fetch(api, "SELECT student_number, email FROM students ORDER BY 1")
    assert [(r["student_number"], r["email"]) for r in rows] == [
        ("S001", "b@uni.edu"),
        ("S002", "a@uni.edu"),
    ]


async def test_rows_the_record_refuses_are_bad_rows(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    """What only the record knows: an unknown semester, an e-mail another student has."""
    semester = await catalog.semester()
    path = write(
        tmp_path,
        "c.csv",
        csv_text(CATALOG_HEADER, [
            ["Spring 1999", "X1", "T", "3", "", "001", 5, "", "", "", "", ""],
            [semester.name, "X2", "T", "3", "NOPE1", "001", 5, "", "", "", "", ""],
        ]),
    )  # fmt: skip
    with pytest.raises(BadRows) as refused:
        await run_catalog(api, path)
    assert refused.value.problems == [
        (2, "unknown semester 'Spring 1999'"),
        (3, "prerequisite NOPE1 is not a course in the file or the catalog"),
    ]
    taken = await catalog.student()
    path = write(
        tmp_path,
        "s.csv",
        csv_text(STUDENT_HEADER, [["N1", "A", "B", taken.email.upper(), "", ""]]),
    )
    with pytest.raises(BadRows) as refused:
        await run_students(api, path)
    assert refused.value.problems == [
        (2, f"email {taken.email.upper()} belongs to student {taken.student_number}")
    ]


async def test_an_import_during_a_rush_changes_no_answered_seat(
    api: Api, catalog: Catalog, worker: Worker, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    rows = [
        [semester.name, f"R{n}", f"Rush {n}", "3", "", "001", 5, "", "", "", "", ""]
        for n in range(4)
    ]
    await run_catalog(api, write(tmp_path, "v1.csv", csv_text(CATALOG_HEADER, rows)))
    ids = await section_ids(api)
    sections = [ids[(f"R{n}", "001")] for n in range(4)]
    students = await catalog.students(50)
    rows[0][6] = 9  # a capacity raise under the rush
    rows[1][2] = "Renamed"  # unrelated changes
    rows[2][7] = "MWF 09:00-09:50"
    rows += [
        [semester.name, f"N{n}", f"New {n}", "3", "", "001", 5, "", "", "", "", ""]
        for n in range(20)
    ]
    path = write(tmp_path, "v2.csv", csv_text(CATALOG_HEADER, rows))
    requests = [
        (s, SimpleNamespace(id=section)) for s in students for section in sections
    ]  # 200 registers

    async def one(student: Any, section: Any) -> tuple[Any, Any, str]:
        return student.id, section.id, await outcome(api, student, section)

    rush = asyncio.gather(*(one(s, sec) for s, sec in requests))
    report = await run_catalog(api, path)
    answers = await rush
    assert report.refused == [] and report.added == 40
    enrolled = [(s, sec) for s, sec, o in answers if o == "ENROLLED"]
    assert len(enrolled) >= 20
    redis = api.container.redis
    for student_id, section_id in enrolled:
        members = await redis.smembers(api.container.keys.section(section_id).enrolled)
        assert str(student_id) in members
    for section_id, seats in zip(sections, (9, 5, 5, 5), strict=True):
        members = await redis.smembers(api.container.keys.section(section_id).enrolled)
        assert len(members) <= seats
    await worker.drain()
    stored = await fetch(
        api, "SELECT student_id, section_id FROM registrations WHERE status = 'enrolled'"
    )
    kept = {(r["student_id"], r["section_id"]) for r in stored}
    assert set(enrolled) <= kept
    per_section = {sid: sum(1 for _, s in kept if s == sid) for sid in sections}
    assert per_section[sections[0]] <= 9 and all(per_section[s] <= 5 for s in sections[1:])


async def test_the_command_exits_2_on_bad_rows_0_when_imported_with_json_progress(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester = await catalog.semester()
    bad = catalog_rows(semester.name)
    bad[1][6] = "many"
    path = write(tmp_path, "bad.csv", csv_text(CATALOG_HEADER, bad))
    settings = api.container.settings
    done = await acoursereg(settings, "import", "catalog", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}:3: seats is not a whole number: 'many'" in done.stderr
    assert "nothing was imported" in done.stderr
    assert await section_ids(api) == {}

    good = write(tmp_path, "good.csv", csv_text(CATALOG_HEADER, catalog_rows(semester.name)))
    done = await acoursereg(
        settings, "import", "catalog", str(good), LOG_FORMAT="json", LOG_LEVEL="INFO"
    )
    assert done.returncode == 0, done.stderr
    assert "2 courses and 3 sections added" in done.stdout
    progress = [
        json.loads(line)
        for line in done.stderr.splitlines()
        if line.startswith("{") and '"phase"' in line
    ]
    phases = {p["phase"] for p in progress}
    assert {"checking rows", "writing new rows", "opening sections"} <= phases
    assert all({"done", "total", "import"} <= p.keys() for p in progress)
    assert len(await section_ids(api)) == 3


async def test_a_row_made_meanwhile_rolls_the_new_rows_back(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    """The interleaving, step by step: the file is checked, a staff mutation then creates
    one of the courses it adds, then the import writes: nothing of its new rows stays."""
    from domain.imports import plan_catalog
    from infrastructure.cli.command import CommandFailed
    from infrastructure.cli.imports import catalog_world, written_together
    from infrastructure.postgres.imports import PostgresImports
    from tests.conftest import STAFF

    semester = await catalog.semester()
    path = write(tmp_path, "c.csv", csv_text(CATALOG_HEADER, catalog_rows(semester.name)))
    records = read_records(path)
    plan = plan_catalog(records, await catalog_world(api.container, records))
    await api.container.catalog.create_course(STAFF, "MATH201", "Made meanwhile")
    with pytest.raises(CommandFailed, match="nothing was written"):
        async with written_together():
            await PostgresImports(api.container.sessions).write_catalog(plan, lambda n: None)
    assert await section_ids(api) == {}
    codes = [r["course_code"] for r in await fetch(api, "SELECT course_code FROM courses")]
    assert codes == ["MATH201"]
