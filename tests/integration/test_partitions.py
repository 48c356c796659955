"""Registrations partitioned by semester (migration 0004): a partition per semester, made in
the semester's own transaction; the worker writes each row into its semester's partition;
reads of one semester touch one partition (EXPLAIN); the migration converts a database that
holds registrations, and back."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from alembic import command
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from infrastructure.postgres.migrate import alembic_config
from tests.client import REGISTER
from tests.conftest import Api, Catalog, Servers, Worker

CREATE_SEMESTER = """mutation($i: CreateSemesterInput!) { createSemester(input: $i) { id } }"""


def partition(semester_id: Any) -> str:
    return f"registrations_{uuid.UUID(str(semester_id)).hex}"


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(url)
    try:
        yield connection
    finally:
        await connection.close()


async def partitions(url: str) -> set[str]:
    async with connected(url) as connection:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'registrations'::regclass"
        )
    return {r["relname"] for r in rows}


async def test_each_new_semester_gets_its_partition_in_its_own_transaction(
    api: Api, settings: Any
) -> None:
    now = datetime.now(UTC)
    created = await api.staff(
        CREATE_SEMESTER,
        i={
            "name": "Spring",
            "startDate": "2027-01-10",
            "endDate": "2027-05-20",
            "registrationStart": now.isoformat(),
            "registrationEnd": (now + timedelta(days=9)).isoformat(),
        },
    )
    semester = created["createSemester"]["id"]
    assert partition(semester) in await partitions(settings.database_url)

    rolled_back = uuid.uuid4()
    async with connected(settings.database_url) as connection:
        with pytest.raises(RuntimeError):
            async with connection.transaction():
                await connection.execute(
                    "INSERT INTO semesters (semester_id, semester_name, start_date, end_date, "
                    "registration_start, registration_end) VALUES ($1, 'x', $2, $2, $3, $4)",
                    rolled_back,
                    date(2027, 9, 1),
                    now,
                    now + timedelta(days=1),
                )
                assert partition(rolled_back) in {
                    r["relname"] for r in await connection.fetch("SELECT relname FROM pg_class")
                }
                raise RuntimeError("roll back")
    assert partition(rolled_back) not in await partitions(settings.database_url)


async def test_the_worker_writes_each_registration_into_its_semesters_partition(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    fall, spring = await catalog.semester(), await catalog.semester()
    sections = [await catalog.section(2, fall), await catalog.section(2, spring)]
    students = await catalog.students(3)
    for student in students:
        body = await api.gql(
            REGISTER,
            api.student_token(student.id),
            i={"studentId": str(student.id), "sectionIds": [str(s.id) for s in sections]},
        )
        assert "errors" not in body, body
    await worker.drain()
    async with connected(settings.database_url) as connection:
        rows = await connection.fetch(
            "SELECT tableoid::regclass::text AS part, semester_id, section_id, status "
            "FROM registrations WHERE section_id = ANY($1::uuid[])",
            [s.id for s in sections],
        )
    assert len(rows) == 4  # two seats each; the third student waits in both
    expected = {sections[0].id: fall.id, sections[1].id: spring.id}
    for row in rows:
        assert row["semester_id"] == expected[row["section_id"]]
        assert row["part"] == partition(row["semester_id"])


@contextmanager
def captured(engine: AsyncEngine) -> Iterator[list[tuple[str, Any]]]:
    """The SQL and parameters the app sends (as asyncpg gets them), to EXPLAIN the very
    statements of a read."""
    seen: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", keep)


def scanned(plan: Any) -> list[str]:
    """The relations an EXPLAIN (FORMAT JSON) plan reads."""
    found = []
    if isinstance(plan, dict):
        if "Relation Name" in plan:
            found.append(plan["Relation Name"])
        for value in plan.values():
            found += scanned(value)
    elif isinstance(plan, list):
        for value in plan:
            found += scanned(value)
    return found


async def test_reads_of_one_semester_touch_only_its_partition(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    """The enrolled students of a section with its semester (rebuild, reconcile) and a
    student's credits in a semester (Student.credits) read one partition of three."""
    semesters = [await catalog.semester() for _ in range(3)]
    sections = [await catalog.section(5, s) for s in semesters]
    student = await catalog.student()
    ids = {"studentId": str(student.id), "sectionIds": [str(s.id) for s in sections]}
    await api.gql(REGISTER, api.student_token(student.id), i=ids)
    await worker.drain()
    container = api.container
    reads = {
        "enrolled of a section": lambda: container.snapshot.enrolled(
            [sections[1].id], [semesters[1].id]
        ),
        "credits in a semester": lambda: container.rule_records.credits(
            [(student.id, semesters[1].id)]
        ),
    }
    async with connected(settings.database_url) as connection:
        for name, read in reads.items():
            with captured(container.engine) as sent:
                assert await read()
            registrations = [(sql, args) for sql, args in sent if "registrations" in sql]
            assert len(registrations) == 1, (name, sent)
            sql, args = registrations[0]
            plan = json.loads(await connection.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            parts = [r for r in scanned(plan) if r.startswith("registrations_")]
            assert parts == [partition(semesters[1].id)], (name, parts)


def _database(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


async def _migrate(url: str, revision: str, down: bool = False) -> None:
    config = alembic_config(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    run = command.downgrade if down else command.upgrade
    await asyncio.to_thread(run, config, revision)


SEED = """
INSERT INTO semesters (semester_id, semester_name, start_date, end_date, registration_start,
                       registration_end)
SELECT id, 'Term', DATE '2026-09-01', DATE '2026-12-20', now(), now() + interval '1 day'
FROM unnest($1::uuid[]) AS id;
"""


async def test_the_migration_partitions_existing_registrations_and_back(servers: Servers) -> None:
    """Invariant: every row survives 0003 -> 0004 (each in its section's semester's partition,
    unique per semester, student and section) and 0004 -> 0003."""
    name = f"coursereg_migration_{uuid.uuid4().hex[:10]}"
    async with connected(servers.admin_url) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    url = _database(servers.admin_url, name)
    semesters = [uuid.uuid4(), uuid.uuid4()]
    try:
        await _migrate(url, "0003")
        async with connected(url) as connection:
            await connection.execute(SEED, semesters)
            course = await connection.fetchval(
                "INSERT INTO courses (course_code, course_name) VALUES ('M1', 'M') "
                "RETURNING course_id"
            )
            sections = [
                await connection.fetchval(
                    "INSERT INTO sections (course_id, semester_id, section_number, total_seats) "
                    "VALUES ($1, $2, $3, 10) RETURNING section_id",
                    course,
                    semester,
                    f"S{n}",
                )
                for n, semester in enumerate(semesters)
            ]
            students = [
                await connection.fetchval(
                    "INSERT INTO students (student_number, first_name, last_name, email) "
                    "VALUES ($1, 'A', 'B', $2) RETURNING student_id",
                    f"N{n}",
                    f"n{n}@uni.edu",
                )
                for n in range(5)
            ]
            await connection.executemany(
                "INSERT INTO registrations (student_id, section_id, status) VALUES ($1, $2, $3)",
                [
                    (student, section, "dropped" if n == 0 else "enrolled")
                    for n, student in enumerate(students)
                    for section in sections
                ],
            )
            before = await connection.fetch(
                "SELECT registration_id, student_id, section_id, status FROM registrations"
            )
        await _migrate(url, "head")
        async with connected(url) as connection:
            after = await connection.fetch(
                "SELECT registration_id, student_id, section_id, status, semester_id, "
                "tableoid::regclass::text AS part FROM registrations"
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await connection.execute(
                    "INSERT INTO registrations (semester_id, student_id, section_id) "
                    "VALUES ($1, $2, $3)",
                    semesters[0],
                    students[1],
                    sections[0],
                )
            with pytest.raises(asyncpg.ForeignKeyViolationError):  # not the section's semester
                await connection.execute(
                    "INSERT INTO registrations (semester_id, student_id, section_id) "
                    "VALUES ($1, $2, $3)",
                    semesters[1],
                    students[1],
                    sections[0],
                )
        assert {tuple(r.values())[:4] for r in after} == {tuple(r.values()) for r in before}
        for row in after:
            assert row["semester_id"] == semesters[sections.index(row["section_id"])]
            assert row["part"] == partition(row["semester_id"])
        await _migrate(url, "0003", down=True)
        async with connected(url) as connection:
            back = await connection.fetch(
                "SELECT registration_id, student_id, section_id, status FROM registrations"
            )
            kind = await connection.fetchval(
                "SELECT relkind::text FROM pg_class WHERE relname = 'registrations'"
            )
        assert {tuple(r.values()) for r in back} == {tuple(r.values()) for r in before}
        assert kind == "r", "a plain table again"
    finally:
        async with connected(servers.admin_url) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
