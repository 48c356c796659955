"""Staff work on the registration rules: validation, the record in Postgres (one unit of work),
then the live state: a section's static data through the seat store and the section
directory's announcement, a student's rule state through the rule store's mirror."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from domain.catalog import MAX_SEATS, require_aware, require_staff, require_text
from domain.errors import BadInput, NotFound
from domain.model import Actor, Course, Section, SectionSetup, Student
from domain.ports import CatalogReads, RuleMirror, SectionDirectory, SectionSeats
from domain.rule_records import KEEP, Hold, RuleWrites, SectionRulesChange, TimeTicket
from domain.rules import WEEKDAYS, Meeting
from domain.time_tickets import TicketRow, check_window, plan_tickets

MAX_COURSE_CREDITS = 30.0
MAX_STUDENT_CREDITS = 60.0
MAX_MEETINGS = 10
MAX_LINKED_SECTIONS = 20
MAX_PREREQUISITES = 20
MAX_OFFER_HOURS = 720
MAX_ATTEMPTS_PAGE = 500
MIRROR_CHUNK = 500

# Called with the number of students just mirrored (bulk time tickets).
Progress = Callable[[int], None]


def require_credits(field: str, value: float, low: float, high: float, low_open: bool) -> None:
    """Credits go in steps of 0.5 (NUMERIC(4,1) would round anything finer silently)."""
    below = value <= low if low_open else value < low
    if below or value > high:
        bound = "above" if low_open else "at least"
        raise BadInput(f"{field} must be {bound} {low:g} and at most {high:g}", field=field)
    if not (value * 2).is_integer():
        raise BadInput(f"{field} must be a multiple of 0.5", field=field)


def require_distinct(field: str, ids: Sequence[UUID], most: int) -> tuple[UUID, ...]:
    if len(set(ids)) != len(ids):
        raise BadInput(f"{field} must not repeat an id", field=field)
    if len(ids) > most:
        raise BadInput(f"{field} may name at most {most}", field=field)
    return tuple(ids)


def require_attempts_page(first: int) -> None:
    if not 0 <= first <= MAX_ATTEMPTS_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_ATTEMPTS_PAGE}", field="first")


def checked_meetings(meetings: Sequence[Meeting]) -> tuple[Meeting, ...]:
    """Valid, with locations trimmed (blank is none), and not overlapping one another: a
    section would otherwise conflict with itself."""
    if len(meetings) > MAX_MEETINGS:
        raise BadInput(f"a section has at most {MAX_MEETINGS} meetings", field="meetings")
    checked = []
    taken: list[tuple[int, int]] = []
    for meeting in meetings:
        meeting.validate()
        location = meeting.location.strip() if meeting.location is not None else None
        if location:
            location = require_text("location", location, 100)
        days = tuple(sorted(set(meeting.days), key=WEEKDAYS.index))
        checked.append(Meeting(days, meeting.start_time, meeting.end_time, location or None))
        for start, end in meeting.intervals():
            if any(start < e and s < end for s, e in taken):
                raise BadInput("a section's meetings must not overlap", field="meetings")
            taken.append((start, end))
    return tuple(checked)


def check_change(change: SectionRulesChange) -> SectionRulesChange:
    capacity = change.waitlist_capacity
    if capacity is not KEEP and capacity is not None and not 0 <= capacity <= MAX_SEATS:
        raise BadInput(
            f"waitlistCapacity must be between 0 and {MAX_SEATS}, or null for no limit",
            field="waitlistCapacity",
        )
    if change.offer_hours is not None and not 1 <= change.offer_hours <= MAX_OFFER_HOURS:
        raise BadInput(f"offerHours must be between 1 and {MAX_OFFER_HOURS}", field="offerHours")
    meetings = None if change.meetings is None else checked_meetings(change.meetings)
    linked = change.linked_sections
    if linked is not None:
        linked = require_distinct("linkedSectionIds", linked, MAX_LINKED_SECTIONS)
    return SectionRulesChange(
        meetings, linked, change.waitlist_capacity, change.waitlist_mode, change.offer_hours
    )


@dataclass(slots=True)
class RulesAdmin:
    catalog: CatalogReads
    records: RuleWrites
    seats: SectionSeats
    rules: RuleMirror
    sections: SectionDirectory

    # -- course and section rules: refreshed in every section's live state ------------------

    async def set_course_rules(
        self,
        actor: Actor,
        course_id: UUID,
        credits: float | None,
        prerequisites: Sequence[UUID] | None,
    ) -> Course:
        """Credits and prerequisites of the course, for every section of it in any semester."""
        require_staff(actor)
        if credits is not None:
            require_credits("credits", credits, 0.0, MAX_COURSE_CREDITS, low_open=False)
        if prerequisites is not None:
            field = "prerequisiteCourseIds"
            prerequisites = require_distinct(field, prerequisites, MAX_PREREQUISITES)
            if course_id in prerequisites:
                raise BadInput("a course cannot be its own prerequisite", field=field)
            found = await self.catalog.courses(prerequisites)
            missing = [str(p) for p, c in zip(prerequisites, found, strict=True) if c is None]
            if missing:
                raise NotFound(f"courses not found: {', '.join(missing)}", field=field)
        course = await self.records.set_course_rules(course_id, credits, prerequisites)
        if course is None:
            raise NotFound(f"course {course_id} not found")
        await self._refresh(await self.records.setups_of_course(course_id))
        return course

    async def set_section_rules(
        self, actor: Actor, section_id: UUID, change: SectionRulesChange
    ) -> Section:
        require_staff(actor)
        change = check_change(change)
        (section,) = await self.catalog.sections([section_id])
        if section is None:
            raise NotFound(f"section {section_id} not found")
        if change.linked_sections:
            await self._check_links(section, change.linked_sections)
        await self.records.set_section_rules(section_id, change)
        setup = await self.catalog.section_setup(section_id)
        assert setup is not None, "a section found above still exists (never deleted)"
        await self._refresh([setup])
        return section

    async def _check_links(self, section: Section, linked: Sequence[UUID]) -> None:
        field = "linkedSectionIds"
        if section.id in linked:
            raise BadInput("a section cannot be linked to itself", field=field)
        found = await self.catalog.sections(linked)
        missing = [str(i) for i, s in zip(linked, found, strict=True) if s is None]
        if missing:
            raise NotFound(f"sections not found: {', '.join(missing)}", field=field)
        if any(s is not None and s.semester_id != section.semester_id for s in found):
            raise BadInput("linked sections must be in the section's semester", field=field)

    async def _refresh(self, setups: Sequence[SectionSetup]) -> None:
        """The live state follows the record at once: each section's static data (from
        then on a seat step checked against the old rules is refused, register.lua), every
        process told, then the holdings of everyone the section has enrolled or in line.
        Whoever took a seat or a place before the static data changed is among those
        holders; whoever did not is refused it. A holding over the student's credit limit
        or clashing with another after the change stays (the registrar changed the
        catalog; no one loses a seat for it); their next registrations are checked against
        the new values (docs/holdings.md, "Rule changes")."""
        for setup in setups:
            await self.seats.open_section(setup)
        if setups:
            await self.sections.announce([s.section_id for s in setups])
        for setup in setups:
            if setup.rules is not None:
                holders = await self.seats.holders(setup.section_id)
                await self.rules.refresh_holdings(setup, holders)

    # -- student rules: mirrored into the student's Redis slot -------------------------------

    async def place_hold(self, actor: Actor, student_id: UUID, reason: str) -> Hold:
        require_staff(actor)
        text = require_text("reason", reason, 200)
        await self._student(student_id)
        hold = await self.records.place_hold(student_id, text)
        await self.mirror([student_id])
        return hold

    async def lift_hold(self, actor: Actor, hold_id: UUID) -> Student:
        require_staff(actor)
        student_id = await self.records.lift_hold(hold_id)
        if student_id is None:
            raise NotFound(f"no active hold {hold_id}", field="holdId")
        await self.mirror([student_id])
        return await self._student(student_id)

    async def set_time_ticket(
        self,
        actor: Actor,
        student_id: UUID,
        semester_id: UUID,
        opens_at: datetime,
        closes_at: datetime,
    ) -> TimeTicket:
        require_staff(actor)
        require_aware("opensAt", opens_at)
        require_aware("closesAt", closes_at)
        ticket = TimeTicket(student_id, semester_id, opens_at, closes_at)
        (semester,) = await self.catalog.semesters([semester_id])
        if semester is None:
            raise NotFound(f"semester {semester_id} not found", field="semesterId")
        check_window(ticket, semester)
        await self._student(student_id)
        await self.records.set_time_tickets([ticket])
        await self.mirror([student_id])
        return ticket

    async def set_time_tickets(
        self,
        actor: Actor,
        semester_id: UUID,
        rows: Sequence[TicketRow],
        progress: Progress | None = None,
    ) -> int:
        """Many tickets at once (`coursereg tickets`): every row is checked first, and one bad
        row (BadRows, naming each) changes nothing; then all are written in one transaction
        and each student's rule state is mirrored. The number of tickets set."""
        require_staff(actor)
        (semester,) = await self.catalog.semesters([semester_id])
        if semester is None:
            raise NotFound(f"semester {semester_id} not found", field="semesterId")
        numbers = list(dict.fromkeys(row.student_number for row in rows))
        known = dict(zip(numbers, await self.records.students_by_number(numbers), strict=True))
        tickets = plan_tickets(semester, rows, known)
        await self.records.set_time_tickets(tickets)
        await self.mirror([t.student_id for t in tickets], progress)
        return len(tickets)

    async def set_max_credits(self, actor: Actor, student_id: UUID, max_credits: float) -> Student:
        require_staff(actor)
        require_credits("maxCredits", max_credits, 0.0, MAX_STUDENT_CREDITS, low_open=True)
        student = await self.records.set_max_credits(student_id, max_credits)
        if student is None:
            raise NotFound(f"student {student_id} not found")
        await self.mirror([student_id])
        return student

    async def record_completed_course(
        self, actor: Actor, student_id: UUID, course_id: UUID
    ) -> Student:
        require_staff(actor)
        student = await self._student(student_id)
        (course,) = await self.catalog.courses([course_id])
        if course is None:
            raise NotFound(f"course {course_id} not found", field="courseId")
        await self.records.record_completed(student_id, course_id)
        await self.mirror([student_id])
        return student

    async def mirror(self, student_ids: Sequence[UUID], progress: Progress | None = None) -> None:
        """Copy the students' rule state from the record into the rule store."""
        for i in range(0, len(student_ids), MIRROR_CHUNK):
            chunk = student_ids[i : i + MIRROR_CHUNK]
            for rules in await self.records.student_rules(chunk):
                if rules is not None:
                    await self.rules.mirror(rules)
            if progress is not None:
                progress(len(chunk))

    async def _student(self, student_id: UUID) -> Student:
        (student,) = await self.catalog.students([student_id])
        if student is None:
            raise NotFound(f"student {student_id} not found", field="studentId")
        return student
