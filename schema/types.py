"""The contract's object, input and enum types, as data: what a row or an answer holds.
The fields that read more (through the request's DataLoaders or the reservation store) are
added by the subclasses in resolvers/objects.py, which keep these GraphQL names."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Generic, Self, TypeVar
from uuid import UUID

import strawberry
from strawberry import Private

from domain import live, model
from domain.rule_records import LoggedAttempt
from domain.rule_records import TimeTicket as TicketRecord

RegisterOutcome = strawberry.enum(model.RegisterOutcome, name="RegisterOutcome")
DropOutcome = strawberry.enum(model.DropOutcome, name="DropOutcome")
WaitlistStatus = strawberry.enum(live.WaitlistStatus, name="WaitlistStatus")
T = TypeVar("T")


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
    def of(cls, s: model.Semester) -> Self:
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
    def of(cls, c: model.Course) -> Self:
        return cls(id=c.id, code=c.code, name=c.name, is_active=c.is_active)


@strawberry.type
class Section:
    id: UUID
    section_number: str
    is_active: bool
    course_id: Private[UUID]
    semester_id: Private[UUID]
    recorded_total: Private[int]

    @classmethod
    def of(cls, s: model.Section) -> Self:
        return cls(
            id=s.id,
            section_number=s.section_number,
            is_active=s.is_active,
            course_id=s.course_id,
            semester_id=s.semester_id,
            recorded_total=s.total_seats,
        )


@strawberry.type
class Registration:
    id: UUID
    status: RegistrationStatus
    registered_at: datetime
    dropped_at: datetime | None
    section_id: Private[UUID]

    @classmethod
    def of(cls, r: model.Registration) -> Self:
        return cls(
            id=r.id,
            status=RegistrationStatus(r.status.upper()),
            registered_at=r.registered_at,
            dropped_at=r.dropped_at,
            section_id=r.section_id,
        )


@strawberry.type
class WaitlistEntry:
    position: int = strawberry.field(description="1-based live rank in the section's waitlist.")
    joined_at: datetime
    expires_at: datetime | None
    section_id: Private[UUID]


@strawberry.type
class Student:
    id: UUID
    student_number: str
    first_name: str
    last_name: str
    email: str
    enrollment_status: str

    @classmethod
    def of(cls, s: model.Student) -> Self:
        return cls(
            id=s.id,
            student_number=s.student_number,
            first_name=s.first_name,
            last_name=s.last_name,
            email=s.email,
            enrollment_status=s.enrollment_status,
        )


@strawberry.type
class TimeTicket:
    opens_at: datetime
    closes_at: datetime
    semester_id: Private[UUID]

    @classmethod
    def of(cls, t: TicketRecord) -> Self:
        return cls(opens_at=t.opens_at, closes_at=t.closes_at, semester_id=t.semester_id)


@strawberry.type
class RegistrationAttempt:
    at: datetime
    reason: str
    section_id: Private[UUID]

    @classmethod
    def of(cls, a: LoggedAttempt) -> Self:
        return cls(at=a.at, reason=a.reason, section_id=a.section_id)


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    """Named for its node: Edge[Section] is the contract's SectionEdge."""

    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
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
