"""PostgresCatalog: the Catalog port. Reads batch by id (the DataLoaders call these)."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Select, func, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.errors import BadInput, NotFound
from domain.model import (
    Course,
    Registration,
    Section,
    SectionPage,
    SectionQuery,
    SectionSetup,
    Semester,
    Student,
    WaitlistEntry,
)
from domain.rules import SectionRules
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import (
    CourseRow,
    RegistrationRow,
    SectionRow,
    SemesterRow,
    StudentRow,
    WaitlistRow,
)
from infrastructure.postgres.section_rules import RULE_COLUMNS, section_rules_of


def semester_of(row: Any) -> Semester:
    return Semester(
        id=row.semester_id,
        name=row.semester_name,
        start_date=row.start_date,
        end_date=row.end_date,
        registration_start=row.registration_start,
        registration_end=row.registration_end,
        is_active=row.is_active,
    )


def course_of(row: Any) -> Course:
    return Course(row.course_id, row.course_code, row.course_name, row.is_active)


def section_of(row: Any) -> Section:
    return Section(
        id=row.section_id,
        course_id=row.course_id,
        semester_id=row.semester_id,
        section_number=row.section_number,
        total_seats=row.total_seats,
        is_active=row.is_active,
    )


def student_of(row: Any) -> Student:
    return Student(
        id=row.student_id,
        student_number=row.student_number,
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        enrollment_status=row.enrollment_status,
    )


def encode_cursor(code: str, number: str, section_id: UUID) -> str:
    raw = json.dumps([code, number, str(section_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[str, str, UUID]:
    try:
        code, number, section_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        key = str(code), str(number), UUID(section_id)
    except (ValueError, TypeError, UnicodeError) as exc:
        raise BadInput("after is not a cursor this API gave out", field="after") from exc
    if "\x00" in key[0] + key[1]:  # a forged cursor; Postgres refuses NUL in text
        raise BadInput("after is not a cursor this API gave out", field="after")
    return key


SETUP_COLUMNS = (
    SectionRow.section_id,
    SectionRow.total_seats,
    SectionRow.version,
    (SectionRow.is_active & SemesterRow.is_active & CourseRow.is_active).label("active"),
    SemesterRow.registration_start,
    SemesterRow.registration_end,
    *RULE_COLUMNS,
)


def setup_select() -> Any:
    return (
        select(*SETUP_COLUMNS)
        .join(SemesterRow, SemesterRow.semester_id == SectionRow.semester_id)
        .join(CourseRow, CourseRow.course_id == SectionRow.course_id)
    )


def setup_of(row: Any, rules: SectionRules | None = None) -> SectionSetup:
    return SectionSetup(
        section_id=row.section_id,
        total_seats=row.total_seats,
        active=bool(row.active),
        opens_at=row.registration_start,
        closes_at=row.registration_end,
        version=row.version,
        rules=rules,
    )


async def load_setups(session: AsyncSession, *criteria: Any) -> list[SectionSetup]:
    """The setups of the sections matching `criteria` (none: every section), in section id
    order, each with its rules: four queries whatever the number of sections."""
    statement = setup_select().where(*criteria).order_by(SectionRow.section_id)
    rows = (await session.execute(statement)).all()
    rules = await section_rules_of(session, rows)
    return [setup_of(row, rules[row.section_id]) for row in rows]


async def insert_one(session: AsyncSession, statement: Any, conflict: str) -> Any:
    """The row an INSERT ... RETURNING wrote; a broken unique or check constraint is the
    caller's input (BadInput with `conflict`), and the unit of work rolls back."""
    try:
        return (await session.execute(statement)).one()
    except IntegrityError as exc:
        raise BadInput(conflict) from exc


class PostgresCatalog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def _insert(self, statement: Any, conflict: str) -> Any:
        async with unit_of_work(self.sessions) as session:
            return await insert_one(session, statement, conflict)

    async def create_semester(
        self,
        name: str,
        start_date: date,
        end_date: date,
        registration_start: datetime,
        registration_end: datetime,
    ) -> Semester:
        row = await self._insert(
            insert(SemesterRow)
            .values(
                semester_name=name,
                start_date=start_date,
                end_date=end_date,
                registration_start=registration_start,
                registration_end=registration_end,
            )
            .returning(SemesterRow),
            "the semester's dates are inconsistent",
        )
        return semester_of(row[0])

    async def create_course(self, code: str, name: str) -> Course:
        row = await self._insert(
            insert(CourseRow).values(course_code=code, course_name=name).returning(CourseRow),
            f"a course with code {code} exists",
        )
        return course_of(row[0])

    async def create_section(
        self, course_id: UUID, semester_id: UUID, section_number: str, total_seats: int
    ) -> Section:
        statement = (
            insert(SectionRow)
            .values(
                course_id=course_id,
                semester_id=semester_id,
                section_number=section_number,
                total_seats=total_seats,
            )
            .returning(SectionRow)
        )
        conflict = f"section {section_number} of this course exists in this semester"
        async with unit_of_work(self.sessions) as session:
            if await session.get(CourseRow, course_id) is None:
                raise NotFound(f"course {course_id} not found", field="courseId")
            if await session.get(SemesterRow, semester_id) is None:
                raise NotFound(f"semester {semester_id} not found", field="semesterId")
            row = await insert_one(session, statement, conflict)
        return section_of(row[0])

    async def create_student(
        self, student_number: str, first_name: str, last_name: str, email: str
    ) -> Student:
        row = await self._insert(
            insert(StudentRow)
            .values(
                student_number=student_number,
                first_name=first_name,
                last_name=last_name,
                email=email,
            )
            .returning(StudentRow),
            "a student with this student number or email exists",
        )
        return student_of(row[0])

    async def set_student_status(self, student_id: UUID, status: str) -> Student | None:
        async with unit_of_work(self.sessions) as session:
            row = (
                await session.execute(
                    update(StudentRow)
                    .where(StudentRow.student_id == student_id)
                    .values(
                        enrollment_status=status,
                        updated_at=func.now(),
                        version=StudentRow.version + 1,
                    )
                    .returning(StudentRow)
                )
            ).one_or_none()
        return student_of(row[0]) if row else None

    async def _by_id(self, column: Any, ids: Sequence[UUID], convert: Any) -> list[Any]:
        if not ids:
            return []
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(select(column.table).where(column.in_(ids)))).all()
        found = {getattr(r, column.key): convert(r) for r in rows}
        return [found.get(i) for i in ids]

    async def semesters(self, ids: Sequence[UUID]) -> list[Semester | None]:
        return await self._by_id(SemesterRow.semester_id, ids, semester_of)

    async def all_semesters(self) -> list[Semester]:
        order = (SemesterRow.registration_start.desc(), SemesterRow.semester_name)
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(select(SemesterRow).order_by(*order))).scalars()
            return [semester_of(r) for r in rows]

    async def courses(self, ids: Sequence[UUID]) -> list[Course | None]:
        return await self._by_id(CourseRow.course_id, ids, course_of)

    async def courses_by_code(self, codes: Sequence[str]) -> list[Course | None]:
        async with unit_of_work(self.sessions) as session:
            rows = (
                await session.execute(select(CourseRow).where(CourseRow.course_code.in_(codes)))
            ).scalars()
            found = {r.course_code: course_of(r) for r in rows}
        return [found.get(c) for c in codes]

    async def sections(self, ids: Sequence[UUID]) -> list[Section | None]:
        return await self._by_id(SectionRow.section_id, ids, section_of)

    async def students(self, ids: Sequence[UUID]) -> list[Student | None]:
        return await self._by_id(StudentRow.student_id, ids, student_of)

    async def section_setup(self, section_id: UUID) -> SectionSetup | None:
        async with unit_of_work(self.sessions) as session:
            found = await load_setups(session, SectionRow.section_id == section_id)
        return found[0] if found else None

    async def sections_of_courses(
        self, course_ids: Sequence[UUID], semester_id: UUID | None
    ) -> list[list[Section]]:
        statement = select(SectionRow).where(SectionRow.course_id.in_(course_ids))
        if semester_id is not None:
            statement = statement.where(SectionRow.semester_id == semester_id)
        statement = statement.order_by(SectionRow.section_number, SectionRow.section_id)
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(statement)).scalars().all()
        grouped: dict[UUID, list[Section]] = defaultdict(list)
        for row in rows:
            grouped[row.course_id].append(section_of(row))
        return [grouped[c] for c in course_ids]

    def _filtered(self, query: SectionQuery, columns: Sequence[Any]) -> Select[Any]:
        statement = (
            select(*columns)
            .select_from(SectionRow)
            .join(CourseRow, CourseRow.course_id == SectionRow.course_id)
        )
        if query.semester_id is not None:
            statement = statement.where(SectionRow.semester_id == query.semester_id)
        if query.course_code is not None:
            statement = statement.where(CourseRow.course_code == query.course_code.strip().upper())
        return statement

    async def section_ids(self, query: SectionQuery) -> list[UUID]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(self._filtered(query, [SectionRow.section_id]))
            return [r.section_id for r in rows]

    async def find_sections(
        self, query: SectionQuery, first: int, after: str | None, available: set[UUID] | None
    ) -> SectionPage:
        base = self._filtered(query, [SectionRow, CourseRow.course_code])
        counting = self._filtered(query, [func.count()])
        if available is not None:
            base = base.where(SectionRow.section_id.in_(available))
            counting = counting.where(SectionRow.section_id.in_(available))
        if after:
            code, number, last_id = decode_cursor(after)
            key = tuple_(CourseRow.course_code, SectionRow.section_number, SectionRow.section_id)
            base = base.where(key > tuple_(code, number, last_id))
        base = base.order_by(
            CourseRow.course_code, SectionRow.section_number, SectionRow.section_id
        ).limit(first + 1)
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(base)).all()
            total = (await session.execute(counting)).scalar_one()
        page = rows[:first]
        return SectionPage(
            sections=tuple(section_of(r[0]) for r in page),
            cursors=tuple(
                encode_cursor(r.course_code, r[0].section_number, r[0].section_id) for r in page
            ),
            has_next_page=len(rows) > first,
            total_count=total,
        )

    async def registrations(
        self, student_ids: Sequence[UUID], status: str | None
    ) -> list[list[Registration]]:
        statement = select(RegistrationRow).where(RegistrationRow.student_id.in_(student_ids))
        if status is not None:
            statement = statement.where(RegistrationRow.status == status)
        statement = statement.order_by(RegistrationRow.registration_date)
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(statement)).scalars().all()
        grouped: dict[UUID, list[Registration]] = defaultdict(list)
        for r in rows:
            grouped[r.student_id].append(
                Registration(
                    r.registration_id,
                    r.student_id,
                    r.section_id,
                    r.status,
                    r.registration_date,
                    r.dropped_date,
                )
            )
        return [grouped[s] for s in student_ids]

    async def waitlists(self, student_ids: Sequence[UUID]) -> list[list[WaitlistEntry]]:
        statement = (
            select(WaitlistRow)
            .where(WaitlistRow.student_id.in_(student_ids))
            .order_by(WaitlistRow.timestamp)
        )
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(statement)).scalars().all()
        grouped: dict[UUID, list[WaitlistEntry]] = defaultdict(list)
        for r in rows:
            grouped[r.student_id].append(
                WaitlistEntry(r.student_id, r.section_id, r.position, r.timestamp, r.expires_at)
            )
        return [grouped[s] for s in student_ids]
