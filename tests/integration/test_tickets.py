"""`coursereg tickets`: time tickets in bulk from a CSV file, run as operators run it (a
subprocess configured by its environment). Every row is checked before any is written: one
bad row is reported with its line number, exit 2, and nothing changes in Postgres or Redis.
A good file sets every ticket (replacing earlier ones) and mirrors them into Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, Catalog
from tests.footprint import footprint
from tests.integration.test_cli import acoursereg
from tests.integration.test_rules_catalog import SET_TICKET, student_hash

NOW = datetime.now(UTC).replace(microsecond=0)
OPENS, CLOSES = NOW - timedelta(days=1), NOW + timedelta(days=20)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tickets.csv"
    path.write_text(text)
    return path


async def semester_and_students(catalog: Catalog, count: int) -> tuple[Any, list[Any]]:
    return await catalog.semester(OPENS, CLOSES), await catalog.students(count)


async def test_a_good_file_sets_every_ticket_and_mirrors_it(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester, students = await semester_and_students(catalog, 3)
    first, second, third = students
    day = NOW + timedelta(days=2)
    await api.staff(  # replaced by the file
        SET_TICKET,
        s=str(first.id),
        t=str(semester.id),
        o=OPENS.isoformat(),
        c=CLOSES.isoformat(),
    )
    paris = day.astimezone(timezone(timedelta(hours=2)))
    path = write(
        tmp_path,
        "student_number,opens_at,closes_at\n"
        f"{first.student_number},{day.isoformat()},{(day + timedelta(hours=2)).isoformat()}\n"
        "\n"
        f" {second.student_number} ,{paris.isoformat()},{CLOSES.isoformat()}\n"
        f"{third.student_number},{day.strftime('%Y-%m-%dT%H:%M:%SZ')},"
        f"{(day + timedelta(days=1)).isoformat()}\n",
    )
    done = await acoursereg(
        api.container.settings, "tickets", "--semester", str(semester.id), str(path)
    )
    assert done.returncode == 0, done.stderr
    assert f"set 3 time tickets in semester {semester.id}" in done.stdout

    field = f"tk:{semester.id}"
    expected = {
        first.id: (day, day + timedelta(hours=2)),
        second.id: (day, CLOSES),
        third.id: (day, day + timedelta(days=1)),
    }
    for student_id, (opens, closes) in expected.items():
        assert (await student_hash(api, student_id))[field] == f"{ms(opens)},{ms(closes)}"
    rules = await api.container.rule_records.student_rules(list(expected))
    assert {r.student_id: r.tickets[semester.id] for r in rules if r} == expected


BAD_ROWS = [  # from line 2, after the header
    ("{n0},{o},{c},extra", "expected 3 fields"),
    ("nobody,{o},{c}", "no student with number 'nobody'"),
    ("{n1},2026-09-01 08:00,{c}", "needs a time zone offset"),
    ("{n2},yesterday,{c}", "not an ISO 8601"),
    ("{n3},{c},{o}", "closes_at must be after opens_at"),
    ("{n4},{before},{c}", "inside the semester's registration window"),
    ("{n5},{o},{c}", ""),  # fine on its own
    ("{n5},{o},{c}", "already has a row on line 8"),
]


async def test_bad_rows_are_reported_by_line_and_change_nothing(
    api: Api, catalog: Catalog, tmp_path: Path
) -> None:
    semester, students = await semester_and_students(catalog, 6)
    values = {f"n{i}": s.student_number for i, s in enumerate(students)}
    values |= {
        "o": (NOW + timedelta(days=1)).isoformat(),
        "c": (NOW + timedelta(days=2)).isoformat(),
        "before": (OPENS - timedelta(minutes=1)).isoformat(),
    }
    lines = ["student_number,opens_at,closes_at"] + [row.format(**values) for row, _ in BAD_ROWS]
    path = write(tmp_path, "\n".join(lines) + "\n")
    before = await footprint(api)

    done = await acoursereg(
        api.container.settings, "tickets", "--semester", str(semester.id), str(path)
    )
    assert done.returncode == 2, done
    for line, (_, message) in enumerate(BAD_ROWS, start=2):
        if message:
            assert f"{path}:{line}: " in done.stderr and message in done.stderr, (line, message)
        else:
            assert f"{path}:{line}: " not in done.stderr
    assert "7 bad rows" in done.stderr and "Traceback" not in done.stderr
    assert await footprint(api) == before


@pytest.mark.parametrize("case", ["unknown semester", "no such file"])
async def test_an_unknown_semester_or_file_exits_2(
    api: Api, catalog: Catalog, tmp_path: Path, case: str
) -> None:
    semester, (student,) = await semester_and_students(catalog, 1)
    path = write(tmp_path, f"{student.student_number},{OPENS.isoformat()},{CLOSES.isoformat()}\n")
    semester_id = (
        "00000000-0000-4000-8000-000000000000" if case == "unknown semester" else str(semester.id)
    )
    if case == "no such file":
        path = tmp_path / "missing.csv"
    before = await footprint(api)
    done = await acoursereg(api.container.settings, "tickets", "--semester", semester_id, str(path))
    assert done.returncode == 2, done
    assert ("not found" if case == "unknown semester" else "cannot read") in done.stderr
    assert await footprint(api) == before
