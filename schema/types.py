"""The contract's object, input and enum types. Nested fields read through the request's
DataLoaders; live counts come from the reservation store, never from Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

import strawberry
from strawberry import Info as _Info
from strawberry import Private

from domain import live, model
from domain.registration import authorize
from domain.rule_records import LoggedAttempt
from domain.rule_records import TimeTicket as TicketRecord
from domain.rules import DEFAULT_CREDITS, DEFAULT_MAX_CREDITS, SectionRules
from domain.rules_admin import require_attempts_page
from resolvers.context import Context
from schema.rules import Hold, Meeting, WaitlistMode

Info = _Info[Context, None]

RegisterOutcome = strawberry.enum(model.RegisterOutcome, name="RegisterOutcome")
DropOutcome = strawberry.enum(model.DropOutcome, name="DropOutcome")
WaitlistStatus = strawberry.enum(live.WaitlistStatus, name="WaitlistStatus")


@strawberry.enum
class RegistrationStatus(StrEnum):
    ENROLLED = "ENROLLED"
    DROPPED = "DROPPED"


@strawberry.type
class Semester:
    id: UUID
    name: str
    start_date: date
    end_date: date
    registration_start: datetime
    registration_end: datetime
    is_active: bool

    @classmethod
    def of(cls, s: model.Semester) -> Semester:
        return cls(
            id=s.id,
            name=s.name,
            start_date=s.start_date,
            end_date=s.end_date,
            registration_start=s.registration_start,
            registration_end=s.registration_end,
            is_active=s.is_active,
        )


@strawberry.type
class Course:
    id: UUID
    code: str
    name: str
    is_active: bool

    @classmethod
    def of(cls, c: model.Course) -> Course:
        return cls(id=c.id, code=c.code, name=c.name, is_active=c.is_active)

    @strawberry.field
    async def sections(
        self, info: Info, semester_id: UUID | None = strawberry.UNSET
    ) -> list[Section]:
        semester = semester_id if semester_id else None
        rows = await info.context.loaders.course_sections.load((self.id, semester))
        return [Section.of(s) for s in rows]

    @strawberry.field
    async def credits(self, info: Info) -> float:
        found = await info.context.loaders.course_rules.load(self.id)
        return found.credits if found else DEFAULT_CREDITS

    @strawberry.field
    async def prerequisites(self, info: Info) -> list[Course]:
        found = await info.context.loaders.course_rules.load(self.id)
        return await _courses(info, found.prerequisites if found else ())


@strawberry.type
class Section:
    id: UUID
    section_number: str
    is_active: bool
    course_id: Private[UUID]
    semester_id: Private[UUID]
    recorded_total: Private[int]

    @classmethod
    def of(cls, s: model.Section) -> Section:
        return cls(
            id=s.id,
            section_number=s.section_number,
            is_active=s.is_active,
            course_id=s.course_id,
            semester_id=s.semester_id,
            recorded_total=s.total_seats,
        )

    @strawberry.field
    async def course(self, info: Info) -> Course:
        course = await info.context.loaders.courses.load(self.course_id)
        assert course is not None, "a section's course exists (foreign key)"
        return Course.of(course)

    @strawberry.field
    async def semester(self, info: Info) -> Semester:
        semester = await info.context.loaders.semesters.load(self.semester_id)
        assert semester is not None, "a section's semester exists (foreign key)"
        return Semester.of(semester)

    @strawberry.field
    async def total_seats(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.total_seats if state else self.recorded_total

    @strawberry.field(description="Live count from the reservation store, never negative.")
    async def available_seats(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.available_seats if state else 0

    @strawberry.field
    async def waitlist_length(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.waitlist_length if state else 0

    async def _rules(self, info: Info) -> SectionRules:
        found = await info.context.loaders.section_rules.load(self.id)
        return found or SectionRules(self.course_id, self.semester_id)

    @strawberry.field
    async def meetings(self, info: Info) -> list[Meeting]:
        return [Meeting.of(m) for m in (await self._rules(info)).meetings]

    @strawberry.field(
        description="Sections of which the student must hold one to hold this one "
        "(lecture and lab)."
    )
    async def linked_sections(self, info: Info) -> list[Section]:
        linked = (await self._rules(info)).linked_sections
        found = await info.context.loaders.sections.load_many(linked)
        return [Section.of(s) for s in found if s is not None]

    @strawberry.field(description="Null means unlimited.")
    async def waitlist_capacity(self, info: Info) -> int | None:
        return (await self._rules(info)).waitlist_capacity

    @strawberry.field
    async def waitlist_mode(self, info: Info) -> WaitlistMode:
        return WaitlistMode.of((await self._rules(info)).waitlist_mode)

    @strawberry.field(description="Hours an OFFER stays open.")
    async def offer_hours(self, info: Info) -> int:
        return (await self._rules(info)).offer_hours


async def _section(info: Info, section_id: UUID) -> Section:
    section = await info.context.loaders.sections.load(section_id)
    assert section is not None, "a registration's section exists (foreign key)"
    return Section.of(section)


async def _courses(info: Info, course_ids: Sequence[UUID]) -> list[Course]:
    """By code: sets of courses (prerequisites, completed ones) have no order of their own."""
    found = await info.context.loaders.courses.load_many(course_ids)
    return sorted((Course.of(c) for c in found if c is not None), key=lambda c: c.code)


@strawberry.type
class Registration:
    id: UUID
    status: RegistrationStatus
    registered_at: datetime
    dropped_at: datetime | None
    section_id: Private[UUID]

    @classmethod
    def of(cls, r: model.Registration) -> Registration:
        return cls(
            id=r.id,
            status=RegistrationStatus(r.status.upper()),
            registered_at=r.registered_at,
            dropped_at=r.dropped_at,
            section_id=r.section_id,
        )

    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class WaitlistEntry:
    position: int = strawberry.field(description="1-based live rank in the section's waitlist.")
    joined_at: datetime
    expires_at: datetime | None
    section_id: Private[UUID]

    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class Student:
    id: UUID
    student_number: str
    first_name: str
    last_name: str
    email: str
    enrollment_status: str

    @classmethod
    def of(cls, s: model.Student) -> Student:
        return cls(
            id=s.id,
            student_number=s.student_number,
            first_name=s.first_name,
            last_name=s.last_name,
            email=s.email,
            enrollment_status=s.enrollment_status,
        )

    @strawberry.field
    async def registrations(
        self, info: Info, status: RegistrationStatus | None = strawberry.UNSET
    ) -> list[Registration]:
        wanted = status.value.lower() if status else None
        rows = await info.context.loaders.registrations.load((self.id, wanted))
        return [Registration.of(r) for r in rows]

    @strawberry.field
    async def waitlist(self, info: Info) -> list[WaitlistEntry]:
        entries = await info.context.loaders.waitlists.load(self.id)
        ranks = await info.context.services.seats.ranks(self.id, [e.section_id for e in entries])
        return [
            WaitlistEntry(
                position=rank,
                joined_at=e.joined_at,
                expires_at=e.expires_at,
                section_id=e.section_id,
            )
            for e, rank in zip(entries, ranks, strict=True)
            if rank is not None  # promoted or left since the record was written
        ]

    @strawberry.field
    async def holds(self, info: Info) -> list[Hold]:
        return [Hold.of(h) for h in await info.context.loaders.holds.load(self.id)]

    @strawberry.field
    async def max_credits(self, info: Info) -> float:
        found = await info.context.loaders.student_rules.load(self.id)
        return found.max_credits if found else DEFAULT_MAX_CREDITS

    @strawberry.field(
        description="Credits enrolled in the semester (waitlisted sections do not count)."
    )
    async def credits(self, info: Info, semester_id: UUID) -> float:
        return await info.context.loaders.credits.load((self.id, semester_id))

    @strawberry.field
    async def completed_courses(self, info: Info) -> list[Course]:
        found = await info.context.loaders.student_rules.load(self.id)
        return await _courses(info, list(found.completed_courses) if found else [])

    @strawberry.field
    async def time_ticket(self, info: Info, semester_id: UUID) -> TimeTicket | None:
        found = await info.context.loaders.student_rules.load(self.id)
        window = found.tickets.get(semester_id) if found else None
        if window is None:
            return None
        return TimeTicket.of(TicketRecord(self.id, semester_id, *window))

    @strawberry.field(
        description="Refused attempts, newest first: for the student themself, advisors and staff."
    )
    async def registration_attempts(
        self, info: Info, first: int | None = 50
    ) -> list[RegistrationAttempt]:
        # Advisors are staff here: the student themself or a staff token.
        authorize(info.context.actor, self.id)
        wanted = 50 if first is None else first
        require_attempts_page(wanted)
        found = await info.context.loaders.attempts.load((self.id, wanted))
        return [RegistrationAttempt.of(a) for a in found]


@strawberry.type
class TimeTicket:
    opens_at: datetime
    closes_at: datetime
    semester_id: Private[UUID]

    @classmethod
    def of(cls, t: TicketRecord) -> TimeTicket:
        return cls(opens_at=t.opens_at, closes_at=t.closes_at, semester_id=t.semester_id)

    @strawberry.field
    async def semester(self, info: Info) -> Semester:
        semester = await info.context.loaders.semesters.load(self.semester_id)
        assert semester is not None, "a ticket's semester exists (foreign key)"
        return Semester.of(semester)


@strawberry.type
class RegistrationAttempt:
    at: datetime
    reason: str
    section_id: Private[UUID]

    @classmethod
    def of(cls, a: LoggedAttempt) -> RegistrationAttempt:
        return cls(at=a.at, reason=a.reason, section_id=a.section_id)

    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class SectionEdge:
    cursor: str
    node: Section


@strawberry.type
class SectionConnection:
    edges: list[SectionEdge]
    page_info: PageInfo
    total_count: int


@strawberry.input
class SectionFilter:
    semester_id: UUID | None = strawberry.UNSET
    course_code: str | None = strawberry.UNSET
    available_only: bool | None = False


@strawberry.input
class RegisterInput:
    student_id: UUID
    section_ids: list[UUID] = strawberry.field(
        description="1 to 10 distinct sections; results come back in the same order."
    )
    idempotency_key: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Same key and student within 24 hours returns the first answer again.",
    )


@strawberry.type
class SectionResult:
    section_id: UUID
    outcome: RegisterOutcome  # type: ignore[valid-type]
    waitlist_position: int | None = strawberry.field(
        description="Set when outcome is WAITLISTED or ALREADY_WAITLISTED."
    )
    available_seats: int | None = strawberry.field(
        description="Seats left after this request, when known."
    )
    reason: str | None = strawberry.field(
        description="Why, when outcome is REJECTED: SECTION_NOT_FOUND, SECTION_INACTIVE, "
        "REGISTRATION_CLOSED."
    )


@strawberry.type
class RegisterPayload:
    student_id: UUID
    results: list[SectionResult]

    @classmethod
    def of(cls, answer: model.RegisterAnswer) -> RegisterPayload:
        return cls(
            student_id=answer.student_id,
            results=[
                SectionResult(
                    section_id=r.section_id,
                    outcome=r.outcome,
                    waitlist_position=r.waitlist_position,
                    available_seats=r.available_seats,
                    reason=r.reason,
                )
                for r in answer.results
            ],
        )


@strawberry.input
class DropInput:
    student_id: UUID
    section_id: UUID
    idempotency_key: str | None = strawberry.UNSET


@strawberry.type
class DropPayload:
    student_id: UUID
    section_id: UUID
    outcome: DropOutcome  # type: ignore[valid-type]
    available_seats: int | None

    @classmethod
    def of(cls, answer: model.DropAnswer) -> DropPayload:
        return cls(
            student_id=answer.student_id,
            section_id=answer.section_id,
            outcome=answer.outcome,
            available_seats=answer.available_seats,
        )


@strawberry.input
class CreateSemesterInput:
    name: str
    start_date: date
    end_date: date
    registration_start: datetime
    registration_end: datetime


@strawberry.input
class CreateCourseInput:
    code: str
    name: str


@strawberry.input
class CreateSectionInput:
    course_id: UUID
    semester_id: UUID
    section_number: str
    total_seats: int


@strawberry.input
class CreateStudentInput:
    student_number: str
    first_name: str
    last_name: str
    email: str


@strawberry.type
class SeatUpdate:
    section_id: UUID
    available_seats: int
    total_seats: int
    waitlist_length: int
    version: int = strawberry.field(
        description="Grows with every change of the section; a client drops any update older "
        "than one it has."
    )

    @classmethod
    def of(cls, s: model.SeatState) -> SeatUpdate:
        return cls(
            section_id=s.section_id,
            available_seats=s.available_seats,
            total_seats=s.total_seats,
            waitlist_length=s.waitlist_length,
            version=s.version,
        )


@strawberry.type
class WaitlistUpdate:
    section_id: UUID
    student_id: UUID
    status: WaitlistStatus  # type: ignore[valid-type]
    position: int | None = strawberry.field(
        description="1-based live rank while WAITING, else null."
    )
    reason: str | None = strawberry.field(
        default=None, description="Why the student was REMOVED: the rule they would now break."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="While OFFERED: when the offer lapses."
    )


@strawberry.type
class ClaimPayload:
    student_id: UUID
    section_id: UUID
    status: WaitlistStatus = strawberry.field(  # type: ignore[valid-type]
        description="ENROLLED when the offer was still open, else EXPIRED or NOT_WAITLISTED."
    )
