"""PostgresImports: what `coursereg import` reads of the record to check a file against it,
and the bulk writes of its plan's new rows and of the fields no live state holds (titles,
names, e-mail addresses, a section's active flag). New rows go in by COPY, each phase in one
transaction. Changes the live state must follow (credits, prerequisites, meetings, links,
waitlist settings, seats, status, credit limit) are not written here: the staff use cases
write them (infrastructure/cli/imports.py calls them)."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

import asyncpg
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.imports import (
    CatalogPlan,
    KnownCourse,
    KnownSection,
    KnownSemester,
    KnownStudent,
    StudentPlan,
)
from domain.model import SectionSetup
from infrastructure.postgres.catalog import load_setups
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import CourseRow, SectionRow, SemesterRow, StudentRow
from infrastructure.postgres.rule_models import CoursePrerequisiteRow
from infrastructure.postgres.section_rules import (
    RULE_COLUMNS,
    any_of,
    credits_of,
    meeting_values,
    section_rules_of,
    stored_mode,
)

Progress = Callable[[int], None]
COPY_CHUNK = 5_000  # rows per COPY, so the progress moves


class ImportConflict(Exception):
    """A unique key the plan took for free was taken meanwhile: the transaction rolled back."""


@contextlib.asynccontextmanager
async def conflicts_named() -> AsyncIterator[None]:
    """COPY reports a broken unique constraint as asyncpg's error, a statement as
    SQLAlchemy's: either is an ImportConflict."""
    try:
        yield
    except (IntegrityError, asyncpg.exceptions.IntegrityConstraintViolationError) as exc:
        raise ImportConflict(str(getattr(exc, "orig", None) or exc)) from exc


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


async def copy_rows(
    session: AsyncSession,
    table: str,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    progress: Progress,
) -> None:
    """COPY in the session's transaction (asyncpg's copy_records_to_table)."""
    if not records:
        return
    connection = await session.connection()
    await connection.execute(select(1))  # the driver's transaction has begun
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    for i in range(0, len(records), COPY_CHUNK):
        chunk = records[i : i + COPY_CHUNK]
        await driver.copy_records_to_table(table, records=chunk, columns=list(columns))
        progress(len(chunk))


class PostgresImports:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    # -- reads ------------------------------------------------------------------------------

    async def semesters(self) -> list[KnownSemester]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(select(SemesterRow.semester_id, SemesterRow.semester_name))
            return [KnownSemester(r.semester_id, r.semester_name) for r in rows]

    async def courses(self) -> dict[str, KnownCourse]:
        """Every course by code, with its prerequisites."""
        async with unit_of_work(self.sessions) as session:
            edges = await session.execute(
                select(CoursePrerequisiteRow.course_id, CoursePrerequisiteRow.prerequisite_id)
            )
            required: dict[UUID, set[UUID]] = defaultdict(set)
            for course_id, prerequisite_id in edges:
                required[course_id].add(prerequisite_id)
            rows = await session.execute(
                select(
                    CourseRow.course_id,
                    CourseRow.course_code,
                    CourseRow.course_name,
                    CourseRow.credits,
                )
            )
            return {
                r.course_code: KnownCourse(
                    r.course_id,
                    r.course_code,
                    r.course_name,
                    credits_of(r.credits),
                    frozenset(required[r.course_id]),
                )
                for r in rows
            }

    async def sections(self, semester_ids: Sequence[UUID]) -> list[KnownSection]:
        """The sections of these semesters as the record has them (seats: the record's
        total; taken: 0 — the live state knows both better, the caller asks it)."""
        if not semester_ids:
            return []
        statement = (
            select(
                SectionRow.section_id,
                SectionRow.section_number,
                SectionRow.total_seats,
                SectionRow.is_active,
                CourseRow.course_code,
                *RULE_COLUMNS,
            )
            .join(CourseRow, CourseRow.course_id == SectionRow.course_id)
            .where(any_of(SectionRow.semester_id, semester_ids))
        )
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(statement)).all()
            rules = await section_rules_of(session, rows)
        found = []
        for r in rows:
            rule = rules[r.section_id]
            found.append(
                KnownSection(
                    id=r.section_id,
                    semester_id=r.semester_id,
                    course_code=r.course_code,
                    number=r.section_number,
                    seats=r.total_seats,
                    taken=0,
                    meetings=rule.meetings,
                    linked=frozenset(rule.linked_sections),
                    waitlist_capacity=rule.waitlist_capacity,
                    waitlist_mode=rule.waitlist_mode,
                    offer_hours=rule.offer_hours,
                    active=r.is_active,
                )
            )
        return found

    async def students(self) -> list[KnownStudent]:
        statement = select(
            StudentRow.student_id,
            StudentRow.student_number,
            StudentRow.first_name,
            StudentRow.last_name,
            StudentRow.email,
            StudentRow.enrollment_status,
            StudentRow.max_credits,
        )
        async with unit_of_work(self.sessions) as session:
            return [
                KnownStudent(
                    r.student_id,
                    r.student_number,
                    r.first_name,
                    r.last_name,
                    r.email,
                    r.enrollment_status,
                    credits_of(r.max_credits),
                )
                for r in await session.execute(statement)
            ]

    async def setups(self, section_ids: Sequence[UUID]) -> list[SectionSetup]:
        if not section_ids:
            return []
        async with unit_of_work(self.sessions) as session:
            return await load_setups(session, any_of(SectionRow.section_id, section_ids))

    # -- writes -----------------------------------------------------------------------------

    async def write_catalog(self, plan: CatalogPlan, progress: Progress) -> None:
        """New courses (with their prerequisites) and sections (with their meetings and
        links), changed titles and active flags: one transaction (ImportConflict when a key
        was taken meanwhile)."""
        async with conflicts_named(), unit_of_work(self.sessions) as session:
            await copy_rows(
                session,
                "courses",
                ("course_id", "course_code", "course_name", "credits"),
                [(c.id, c.code, c.title, _decimal(c.credits)) for c in plan.new_courses],
                progress,
            )
            await copy_rows(
                session,
                "course_prerequisites",
                ("course_id", "prerequisite_id"),
                [(c.id, p) for c in plan.new_courses for p in c.prerequisites],
                lambda n: None,
            )
            retitled = [
                {"cid": u.id, "new_title": u.title}
                for u in plan.course_updates
                if u.title is not None
            ]
            if retitled:
                table = cast(Table, CourseRow.__table__)
                await session.execute(
                    update(table)
                    .where(table.c.course_id == bindparam("cid"))
                    .values(
                        course_name=bindparam("new_title"),
                        updated_at=func.now(),
                        version=table.c.version + 1,
                    ),
                    retitled,
                )
            await self._new_sections(session, plan, progress)
            await self._set_active(session, plan)

    async def _new_sections(
        self, session: AsyncSession, plan: CatalogPlan, progress: Progress
    ) -> None:
        columns = (
            "section_id",
            "course_id",
            "semester_id",
            "section_number",
            "total_seats",
            "waitlist_capacity",
            "waitlist_mode",
            "offer_hours",
        )
        records = [
            (
                s.id,
                s.course_id,
                s.semester_id,
                s.number,
                s.seats,
                s.waitlist_capacity,
                stored_mode(s.waitlist_mode),
                s.offer_hours,
            )
            for s in plan.new_sections
        ]
        await copy_rows(session, "sections", columns, records, progress)
        meetings = [meeting_values(s.id, m) for s in plan.new_sections for m in s.meetings]
        await copy_rows(
            session,
            "section_meetings",
            ("section_id", "days", "start_minute", "end_minute", "location"),
            [
                (m["section_id"], m["days"], m["start_minute"], m["end_minute"], m["location"])
                for m in meetings
            ],
            lambda n: None,
        )
        await copy_rows(
            session,
            "section_links",
            ("section_id", "linked_section_id"),
            [(s.id, linked) for s in plan.new_sections for linked in s.linked],
            lambda n: None,
        )

    async def _set_active(self, session: AsyncSession, plan: CatalogPlan) -> None:
        reopened = [u.id for u in plan.section_updates if u.active]
        closed = [r.id for r in plan.removed_sections]
        for ids, active in ((reopened, True), (closed, False)):
            if ids:
                await session.execute(
                    update(SectionRow)
                    .where(any_of(SectionRow.section_id, ids))
                    .values(is_active=active, updated_at=func.now())
                )

    async def write_students(self, plan: StudentPlan, progress: Progress) -> None:
        """New students, changed names and e-mail addresses: one transaction. Addresses move
        in two steps (first to a placeholder of the student's own), so two students may
        swap theirs in one file. ImportConflict when a key was taken meanwhile."""
        async with conflicts_named(), unit_of_work(self.sessions) as session:
            await copy_rows(
                session,
                "students",
                (
                    "student_id",
                    "student_number",
                    "first_name",
                    "last_name",
                    "email",
                    "enrollment_status",
                    "max_credits",
                ),
                [
                    (
                        s.id,
                        s.number,
                        s.first_name,
                        s.last_name,
                        s.email,
                        s.status,
                        _decimal(s.max_credits),
                    )
                    for s in plan.new
                ],
                progress,
            )
            table = cast(Table, StudentRow.__table__)
            moving = [u for u in plan.updates if u.email is not None]
            if moving:
                await session.execute(
                    update(table)
                    .where(table.c.student_id == bindparam("sid"))
                    .values(email=bindparam("placeholder")),
                    [{"sid": u.id, "placeholder": f"moving-{u.id}@import.invalid"} for u in moving],
                )
            named = [
                u
                for u in plan.updates
                if u.first_name is not None or u.last_name is not None or u.email is not None
            ]
            if named:
                await session.execute(
                    update(table)
                    .where(table.c.student_id == bindparam("sid"))
                    .values(
                        first_name=func.coalesce(bindparam("new_first"), table.c.first_name),
                        last_name=func.coalesce(bindparam("new_last"), table.c.last_name),
                        email=func.coalesce(bindparam("new_email"), table.c.email),
                        updated_at=func.now(),
                        version=table.c.version + 1,
                    ),
                    [
                        {
                            "sid": u.id,
                            "new_first": u.first_name,
                            "new_last": u.last_name,
                            "new_email": u.email,
                        }
                        for u in named
                    ],
                )
