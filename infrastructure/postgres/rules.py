"""PostgresRuleRecords: the RuleRecords port. Each write is one unit of work; one that
replaces a set (prerequisites, meetings, links) first updates the course or section row,
which locks it, so two staff changes of one thing apply one after the other instead of
mixing their sets. Reads batch by id with one array parameter per query."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import String, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.changes import ENROLLED
from domain.errors import BadInput
from domain.model import Course, SectionSetup, Student
from domain.rule_records import (
    KEEP,
    CourseRules,
    Hold,
    LoggedAttempt,
    SectionRulesChange,
    TimeTicket,
)
from domain.rules import SectionRules, StudentRules
from infrastructure.postgres.catalog import course_of, load_setups, student_of
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import CourseRow, RegistrationRow, SectionRow, StudentRow
from infrastructure.postgres.rule_models import (
    CompletedCourseRow,
    CoursePrerequisiteRow,
    HoldRow,
    RegistrationAttemptRow,
    SectionLinkRow,
    SectionMeetingRow,
    TimeTicketRow,
)
from infrastructure.postgres.section_rules import (
    any_of,
    credits_of,
    load_section_rules,
    meeting_values,
    stored_mode,
)
from infrastructure.postgres.student_rules import student_rules_of

# Serializes prerequisite changes, so two at once cannot close a cycle between them
# (each would check the graph without the other's edge). Any constant no one else uses.
PREREQUISITES_LOCK = 0x5052_4551  # "PREQ"
TICKETS_PER_STATEMENT = 4000  # 4 parameters a row, under asyncpg's 32,767

LEADS_BACK = text(
    """
    WITH RECURSIVE reach(id) AS (
        SELECT unnest(CAST(:start AS uuid[]))
        UNION
        SELECT p.prerequisite_id FROM course_prerequisites p JOIN reach r ON p.course_id = r.id
    )
    SELECT EXISTS (SELECT 1 FROM reach WHERE id = :course)
    """
)


def decimal_of(value: float) -> Decimal:
    return Decimal(str(value))


class PostgresRuleRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    # -- writes ------------------------------------------------------------------------------

    async def set_course_rules(
        self, course_id: UUID, credits: float | None, prerequisites: Sequence[UUID] | None
    ) -> Course | None:
        async with unit_of_work(self.sessions) as session:
            if prerequisites is not None:
                await session.execute(select(func.pg_advisory_xact_lock(PREREQUISITES_LOCK)))
            values: dict[str, Any] = {"updated_at": func.now(), "version": CourseRow.version + 1}
            if credits is not None:
                values["credits"] = decimal_of(credits)
            statement = update(CourseRow).where(CourseRow.course_id == course_id)
            row = (
                await session.execute(statement.values(**values).returning(CourseRow))
            ).one_or_none()
            if row is None:
                return None
            if prerequisites is not None:
                await self._replace_prerequisites(session, course_id, prerequisites)
            return course_of(row[0])

    async def _replace_prerequisites(
        self, session: AsyncSession, course_id: UUID, prerequisites: Sequence[UUID]
    ) -> None:
        if prerequisites:
            cycle = await session.scalar(
                LEADS_BACK, {"start": list(prerequisites), "course": course_id}
            )
            if cycle:
                raise BadInput(
                    "these prerequisites would make a cycle: a chain of them leads back to "
                    "the course",
                    field="prerequisiteCourseIds",
                )
        await session.execute(
            delete(CoursePrerequisiteRow).where(CoursePrerequisiteRow.course_id == course_id)
        )
        if prerequisites:
            await session.execute(
                insert(CoursePrerequisiteRow),
                [{"course_id": course_id, "prerequisite_id": p} for p in prerequisites],
            )

    async def set_section_rules(self, section_id: UUID, change: SectionRulesChange) -> None:
        values: dict[str, Any] = {"updated_at": func.now()}
        if change.waitlist_capacity is not KEEP:
            values["waitlist_capacity"] = change.waitlist_capacity
        if change.waitlist_mode is not None:
            values["waitlist_mode"] = stored_mode(change.waitlist_mode)
        if change.offer_hours is not None:
            values["offer_hours"] = change.offer_hours
        async with unit_of_work(self.sessions) as session:
            # The row's version is the live state's (the seat scripts'); rules leave it be.
            await session.execute(
                update(SectionRow).where(SectionRow.section_id == section_id).values(**values)
            )
            if change.meetings is not None:
                await session.execute(
                    delete(SectionMeetingRow).where(SectionMeetingRow.section_id == section_id)
                )
                if change.meetings:
                    await session.execute(
                        insert(SectionMeetingRow),
                        [meeting_values(section_id, m) for m in change.meetings],
                    )
            if change.linked_sections is not None:
                await session.execute(
                    delete(SectionLinkRow).where(SectionLinkRow.section_id == section_id)
                )
                if change.linked_sections:
                    await session.execute(
                        insert(SectionLinkRow),
                        [
                            {"section_id": section_id, "linked_section_id": linked}
                            for linked in change.linked_sections
                        ],
                    )

    async def place_hold(self, student_id: UUID, reason: str) -> Hold:
        async with unit_of_work(self.sessions) as session:
            row = (
                await session.execute(
                    insert(HoldRow).values(student_id=student_id, reason=reason).returning(HoldRow)
                )
            ).scalar_one()
        return Hold(row.hold_id, row.student_id, row.reason, row.placed_at)

    async def lift_hold(self, hold_id: UUID) -> UUID | None:
        async with unit_of_work(self.sessions) as session:
            return await session.scalar(
                update(HoldRow)
                .where(HoldRow.hold_id == hold_id, HoldRow.lifted_at.is_(None))
                .values(lifted_at=func.now())
                .returning(HoldRow.student_id)
            )

    async def set_time_tickets(self, tickets: Sequence[TimeTicket]) -> None:
        rows = [
            {
                "student_id": t.student_id,
                "semester_id": t.semester_id,
                "opens_at": t.opens_at,
                "closes_at": t.closes_at,
            }
            for t in tickets
        ]
        async with unit_of_work(self.sessions) as session:
            for i in range(0, len(rows), TICKETS_PER_STATEMENT):
                statement = pg_insert(TimeTicketRow).values(rows[i : i + TICKETS_PER_STATEMENT])
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[TimeTicketRow.student_id, TimeTicketRow.semester_id],
                        set_={
                            "opens_at": statement.excluded.opens_at,
                            "closes_at": statement.excluded.closes_at,
                        },
                    )
                )

    async def set_max_credits(self, student_id: UUID, max_credits: float) -> Student | None:
        async with unit_of_work(self.sessions) as session:
            row = (
                await session.execute(
                    update(StudentRow)
                    .where(StudentRow.student_id == student_id)
                    .values(
                        max_credits=decimal_of(max_credits),
                        updated_at=func.now(),
                        version=StudentRow.version + 1,
                    )
                    .returning(StudentRow)
                )
            ).one_or_none()
        return student_of(row[0]) if row else None

    async def record_completed(self, student_id: UUID, course_id: UUID) -> None:
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                pg_insert(CompletedCourseRow)
                .values(student_id=student_id, course_id=course_id)
                .on_conflict_do_nothing()
            )

    # -- reads -------------------------------------------------------------------------------

    async def setups_of_course(self, course_id: UUID) -> list[SectionSetup]:
        async with unit_of_work(self.sessions) as session:
            return await load_setups(session, SectionRow.course_id == course_id)

    async def student_rules(self, ids: Sequence[UUID]) -> list[StudentRules | None]:
        if not ids:
            return []
        async with unit_of_work(self.sessions) as session:
            found = await student_rules_of(session, ids)
        return [found.get(i) for i in ids]

    async def course_rules(self, ids: Sequence[UUID]) -> list[CourseRules | None]:
        if not ids:
            return []
        async with unit_of_work(self.sessions) as session:
            courses = await session.execute(
                select(CourseRow.course_id, CourseRow.credits).where(
                    any_of(CourseRow.course_id, ids)
                )
            )
            edges = await session.execute(
                select(CoursePrerequisiteRow.course_id, CoursePrerequisiteRow.prerequisite_id)
                .where(any_of(CoursePrerequisiteRow.course_id, ids))
                .order_by(CoursePrerequisiteRow.course_id, CoursePrerequisiteRow.prerequisite_id)
            )
            required: dict[UUID, list[UUID]] = defaultdict(list)
            for course_id, prerequisite_id in edges:
                required[course_id].append(prerequisite_id)
            found = {
                c: CourseRules(c, credits_of(credits), tuple(required[c])) for c, credits in courses
            }
        return [found.get(i) for i in ids]

    async def section_rules(self, ids: Sequence[UUID]) -> list[SectionRules | None]:
        if not ids:
            return []
        async with unit_of_work(self.sessions) as session:
            found = await load_section_rules(session, any_of(SectionRow.section_id, ids))
        return [found.get(i) for i in ids]

    async def holds(self, student_ids: Sequence[UUID]) -> list[list[Hold]]:
        statement = (
            select(HoldRow)
            .where(any_of(HoldRow.student_id, student_ids), HoldRow.lifted_at.is_(None))
            .order_by(HoldRow.placed_at, HoldRow.hold_id)
        )
        grouped: dict[UUID, list[Hold]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            for row in (await session.execute(statement)).scalars():
                grouped[row.student_id].append(
                    Hold(row.hold_id, row.student_id, row.reason, row.placed_at)
                )
        return [grouped[s] for s in student_ids]

    async def credits(self, keys: Sequence[tuple[UUID, UUID]]) -> list[float]:
        students = list({s for s, _ in keys})
        semesters = list({t for _, t in keys})
        statement = (
            select(
                RegistrationRow.student_id,
                RegistrationRow.semester_id,
                func.sum(CourseRow.credits),
            )
            .join(SectionRow, SectionRow.section_id == RegistrationRow.section_id)
            .join(CourseRow, CourseRow.course_id == SectionRow.course_id)
            .where(
                any_of(RegistrationRow.student_id, students),
                # The partition key: only these semesters' partitions are read.
                any_of(RegistrationRow.semester_id, semesters),
                RegistrationRow.status == ENROLLED,
            )
            .group_by(RegistrationRow.student_id, RegistrationRow.semester_id)
        )
        async with unit_of_work(self.sessions) as session:
            sums = {(s, t): credits_of(total) for s, t, total in await session.execute(statement)}
        return [sums.get(k, 0.0) for k in keys]

    async def attempts(self, student_ids: Sequence[UUID], first: int) -> list[list[LoggedAttempt]]:
        row = RegistrationAttemptRow
        newest = func.row_number().over(
            partition_by=row.student_id, order_by=(row.attempted_at.desc(), row.attempt_id)
        )
        ranked = (
            select(row.student_id, row.section_id, row.reason, row.attempted_at, newest.label("n"))
            .where(any_of(row.student_id, student_ids))
            .subquery()
        )
        statement = select(ranked).where(ranked.c.n <= first).order_by(ranked.c.n)
        grouped: dict[UUID, list[LoggedAttempt]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            for r in await session.execute(statement):
                grouped[r.student_id].append(
                    LoggedAttempt(r.student_id, r.section_id, r.reason, r.attempted_at)
                )
        return [grouped[s] for s in student_ids]

    async def students_by_number(self, numbers: Sequence[str]) -> list[UUID | None]:
        if not numbers:
            return []
        statement = select(StudentRow.student_number, StudentRow.student_id).where(
            any_of(StudentRow.student_number, numbers, String())
        )
        async with unit_of_work(self.sessions) as session:
            found = {number: student_id for number, student_id in await session.execute(statement)}
        return [found.get(n) for n in numbers]
