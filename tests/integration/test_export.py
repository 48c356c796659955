"""`coursereg export registrations`: never behind an answer (refuses, or waits for the
workers), CSV and JSON lines, exactly what Postgres holds, and bad --semester."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from infrastructure.cli.main import main
from infrastructure.cli.worker import make_persister
from infrastructure.postgres.export import COLUMNS
from infrastructure.settings import Settings
from tests.client import drop, registered
from tests.conftest import Api, Catalog, Worker
from tests.integration.test_cli import acoursereg
from tests.integration.test_rules import outcomes, rules

# What Postgres holds, read independently of the exporter's query.
EXPECTED = """
SELECT st.student_number, c.course_code, s.section_number, 'enrolled' AS status,
       r.registration_date AS at, NULL::bigint AS rank, NULL::timestamptz AS expires
FROM registrations r JOIN students st USING (student_id) JOIN sections s USING (section_id)
JOIN courses c ON c.course_id = s.course_id
WHERE r.semester_id = $1 AND r.status = 'enrolled'
UNION ALL
SELECT st.student_number, c.course_code, s.section_number, 'waitlisted',
       w.timestamp, (SELECT count(*) FROM waitlist o
                     WHERE o.section_id = w.section_id AND o.position <= w.position),
       w.expires_at
FROM waitlist w JOIN students st USING (student_id) JOIN sections s USING (section_id)
JOIN courses c ON c.course_id = s.course_id
WHERE s.semester_id = $1
"""


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def expected(settings: Settings, semester: Any) -> set[tuple[Any, ...]]:
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(EXPECTED, semester.id)
    finally:
        await connection.close()
    return {
        (
            r["student_number"],
            r["course_code"],
            r["section_number"],
            r["status"],
            iso(r["at"]),
            r["rank"],
            r["expires"] and iso(r["expires"]),
        )
        for r in rows
    }


def exported(record: dict[str, Any]) -> tuple[Any, ...]:
    waiting = record["status"] == "waitlisted"
    rank = record["waitlist_position"]
    return (
        record["student_number"],
        record["course_code"],
        record["section_number"],
        record["status"],
        record["waitlist_joined_at"] if waiting else record["registered_at"],
        None if rank in (None, "") else int(rank),
        record["offer_expires_at"] or None,
    )


async def test_export_refuses_while_answers_are_unapplied_and_waits_for_a_worker(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    """No worker runs: the registration just answered is in the stream only, so the export
    refuses, naming the count. With --wait, a worker started meanwhile applies it and the
    file has it."""
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    student = await catalog.student()
    assert outcomes(await registered(api, student, section)) == [("ENROLLED", None)]

    behind = await acoursereg(settings, "export", "registrations", "--semester", str(semester.id))
    assert behind.returncode == 1, behind.stderr
    assert "1 stream entries are not applied" in behind.stderr
    assert behind.stdout == ""

    waiting = asyncio.create_task(
        acoursereg(
            settings, "export", "registrations", "--semester", str(semester.id), "--wait", "30"
        )
    )
    await asyncio.sleep(1.5)  # the export has started and is waiting
    assert not waiting.done()
    persister = make_persister(api.container, f"late-{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    try:
        done = await waiting
    finally:
        stop.set()
        await task
    assert done.returncode == 0, done.stderr
    (record,) = csv.DictReader(io.StringIO(done.stdout))
    assert (record["student_number"], record["status"]) == (student.student_number, "enrolled")
    assert record["section_id"] == str(section.id)
    assert "exported 1 registrations" in done.stderr


async def test_export_is_exactly_what_postgres_holds_in_csv_and_json_lines(
    api: Api, catalog: Catalog, worker: Worker, settings: Settings, tmp_path: Path
) -> None:
    """Enrolled, waitlisted (positions 1 to 3, counted in line: the first to join left) and
    an offer's expiry, in both formats: the same records, the same as Postgres's, and
    nothing of another semester or of a dropped registration."""
    semester, elsewhere = await catalog.semester(), await catalog.semester()
    full, roomy = await catalog.section(1, semester), await catalog.section(5, semester)
    await rules(api, full, waitlistMode="OFFER")
    other = await catalog.section(5, elsewhere)
    first, second, third, fourth, gone = await catalog.students(5)
    assert outcomes(await registered(api, first, full)) == [("ENROLLED", None)]
    for student in (gone, second, third, fourth):
        assert outcomes(await registered(api, student, full)) == [("WAITLISTED", None)]
    assert (await drop(api, gone, full))["outcome"] == "LEFT_WAITLIST"
    for student in (first, second, gone):
        assert outcomes(await registered(api, student, roomy)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, third, other)) == [("ENROLLED", None)]
    assert (await drop(api, gone, roomy))["outcome"] == "DROPPED"
    assert (await drop(api, first, full))["outcome"] == "DROPPED"  # an offer to second
    await worker.drain()

    as_csv = await acoursereg(settings, "export", "registrations", "--semester", str(semester.id))
    assert as_csv.returncode == 0, as_csv.stderr
    header, *_ = as_csv.stdout.splitlines()
    assert header == ",".join(COLUMNS)
    records = list(csv.DictReader(io.StringIO(as_csv.stdout)))

    target = tmp_path / "registrations.jsonl"
    as_jsonl = await acoursereg(
        settings,
        "export",
        "registrations",
        "--semester",
        str(semester.id),
        "--format",
        "jsonl",
        "--output",
        str(target),
    )
    assert as_jsonl.returncode == 0, as_jsonl.stderr
    assert as_jsonl.stdout == ""
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert all(list(line) == list(COLUMNS) for line in lines)

    truth = await expected(settings, semester)
    assert len(truth) == 5, "roomy: first and second; full: second, third and fourth in line"
    assert {exported(r) for r in records} == truth
    assert {exported(r) for r in lines} == truth
    assert len(records) == len(lines) == 5
    keys = [(r["student_number"], r["course_code"], r["section_number"]) for r in lines]
    assert keys == sorted(keys), "ordered by student number, course code, section number"
    offered = next(r for r in lines if r["student_id"] == str(second.id) and r["waitlist_id"])
    assert offered["waitlist_position"] == 1 and offered["offer_expires_at"] is not None
    assert {r["semester_name"] for r in lines} == {semester.name}
    assert {r["semester_id"] for r in records} == {str(semester.id)}


async def test_export_names_a_bad_semester(
    api: Api, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown = str(uuid.uuid4())
    missing = await acoursereg(settings, "export", "registrations", "--semester", unknown)
    assert missing.returncode == 2
    assert f"no semester {unknown}" in missing.stderr
    with pytest.raises(SystemExit) as garbled:
        main(["export", "registrations", "--semester", "fall-2026"])
    assert garbled.value.code == 2
    assert "--semester must be a semester's id (a UUID), not 'fall-2026'" in capsys.readouterr().err
