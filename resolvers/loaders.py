"""Per-request DataLoaders: every list of sections, courses or seat counts is one query."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID

from strawberry.dataloader import DataLoader

from domain.model import (
    Course,
    SeatState,
    Section,
    Semester,
    Student,
)
from domain.ports import Catalog, CatalogQueries, PendingChanges, SeatStore
from domain.rule_records import CourseRules, Hold, LoggedAttempt, RuleRecords
from domain.rules import SectionRules, StudentRules
from domain.schedule import Schedule, merge

CourseSections = tuple[UUID, UUID | None]  # (course id, semester id or None)
StudentSemester = tuple[UUID, UUID]  # (student id, semester id)
StudentPage = tuple[UUID, int]  # (student id, how many)


async def read_schedules(
    records: CatalogQueries, pending: PendingChanges, students: Sequence[UUID]
) -> list[Schedule]:
    """The students' schedules with their own writes in (domain/schedule.py): the streams'
    pending changes first, then the record."""
    changes = await pending.of_students(students)
    registrations, waitlists = await asyncio.gather(
        records.registrations(students, None), records.waitlists(students)
    )
    return [
        merge(*found) for found in zip(students, registrations, waitlists, changes, strict=True)
    ]


class Loaders:
    def __init__(
        self, records: Catalog, seats: SeatStore, rules: RuleRecords, pending: PendingChanges
    ) -> None:
        self.records = records
        self.seats = seats
        self.rules = rules
        self.pending = pending
        self.sections: DataLoader[UUID, Section | None] = DataLoader(records.sections)
        self.courses: DataLoader[UUID, Course | None] = DataLoader(records.courses)
        self.semesters: DataLoader[UUID, Semester | None] = DataLoader(records.semesters)
        self.students: DataLoader[UUID, Student | None] = DataLoader(records.students)
        self.seat_states: DataLoader[UUID, SeatState | None] = DataLoader(seats.states)
        self.schedules: DataLoader[UUID, Schedule] = DataLoader(self._schedules)
        self.course_sections: DataLoader[CourseSections, list[Section]] = DataLoader(
            self._course_sections
        )
        self.course_rules: DataLoader[UUID, CourseRules | None] = DataLoader(rules.course_rules)
        self.section_rules: DataLoader[UUID, SectionRules | None] = DataLoader(rules.section_rules)
        self.student_rules: DataLoader[UUID, StudentRules | None] = DataLoader(rules.student_rules)
        self.holds: DataLoader[UUID, list[Hold]] = DataLoader(rules.holds)
        self.credits: DataLoader[StudentSemester, float] = DataLoader(rules.credits)
        self.attempts: DataLoader[StudentPage, list[LoggedAttempt]] = DataLoader(self._attempts)

    async def _schedules(self, students: Sequence[UUID]) -> list[Schedule]:
        return await read_schedules(self.records, self.pending, students)

    async def _course_sections(self, keys: Sequence[CourseSections]) -> list[list[Section]]:
        by_semester: dict[UUID | None, list[UUID]] = {}
        for course_id, semester_id in keys:
            by_semester.setdefault(semester_id, []).append(course_id)
        found: dict[CourseSections, list[Section]] = {}
        for semester_id, courses in by_semester.items():
            lists = await self.records.sections_of_courses(courses, semester_id)
            found.update({(c, semester_id): rows for c, rows in zip(courses, lists, strict=True)})
        return [found[k] for k in keys]

    async def _attempts(self, keys: Sequence[StudentPage]) -> list[list[LoggedAttempt]]:
        # One query per distinct page size (a request asks with one or two at most).
        by_first: dict[int, list[UUID]] = {}
        for student_id, first in keys:
            by_first.setdefault(first, []).append(student_id)
        found: dict[StudentPage, list[LoggedAttempt]] = {}
        for first, students in by_first.items():
            lists = await self.rules.attempts(students, first)
            found.update({(s, first): rows for s, rows in zip(students, lists, strict=True)})
        return [found[k] for k in keys]
