"""Entities and value types of registration: what the rules read and what they answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from uuid import UUID

# Rejection is owned by domain.rules (the reasons of the answers below); importable here too.
from domain.rules import Rejection, SectionRules

MAX_SECTIONS_PER_REQUEST = 10
ENROLLMENT_STATUSES = ("active", "inactive", "suspended", "graduated", "withdrawn")
ACTIVE = "active"


class Role(StrEnum):
    STUDENT = "student"
    STAFF = "staff"
    # Reads what staff read about any student (their schedule, attempts, waitlist), changes
    # nothing: every mutation is for the student themself or staff.
    ADVISOR = "advisor"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: the token's subject and role."""

    subject: str
    role: Role

    @property
    def is_staff(self) -> bool:
        return self.role is Role.STAFF

    @property
    def reads_any_student(self) -> bool:
        return self.role is Role.STAFF or self.role is Role.ADVISOR


class RegisterOutcome(StrEnum):
    ENROLLED = "ENROLLED"
    WAITLISTED = "WAITLISTED"
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    ALREADY_WAITLISTED = "ALREADY_WAITLISTED"
    REJECTED = "REJECTED"


class DropOutcome(StrEnum):
    DROPPED = "DROPPED"
    LEFT_WAITLIST = "LEFT_WAITLIST"
    NOT_REGISTERED = "NOT_REGISTERED"


@dataclass(frozen=True, slots=True)
class SectionResult:
    section_id: UUID
    outcome: RegisterOutcome
    available_seats: int | None = None
    waitlist_position: int | None = None
    reason: Rejection | None = None
    # Not part of the answer: where the student stands now when that differs from what the
    # answer says (the first answer of an operation, replayed: lib/once.lua). A holding is
    # settled to this; the client is told the first answer.
    now: RegisterOutcome | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class RegisterAnswer:
    student_id: UUID
    results: tuple[SectionResult, ...]


@dataclass(frozen=True, slots=True)
class DropAnswer:
    student_id: UUID
    section_id: UUID
    outcome: DropOutcome
    available_seats: int | None = None


@dataclass(frozen=True, slots=True)
class SeatState:
    """Live state of one section in the reservation store."""

    section_id: UUID
    total_seats: int
    available_seats: int
    waitlist_length: int
    version: int


@dataclass(frozen=True, slots=True)
class Semester:
    id: UUID
    name: str
    start_date: date
    end_date: date
    registration_start: datetime
    registration_end: datetime
    is_active: bool


@dataclass(frozen=True, slots=True)
class Course:
    id: UUID
    code: str
    name: str
    is_active: bool


@dataclass(frozen=True, slots=True)
class Section:
    id: UUID
    course_id: UUID
    semester_id: UUID
    section_number: str
    total_seats: int
    is_active: bool


@dataclass(frozen=True, slots=True)
class SectionSetup:
    """What the reservation store needs to take seats for a section without asking Postgres:
    its seats, window, and the static data its rules are checked against."""

    section_id: UUID
    total_seats: int
    active: bool
    opens_at: datetime
    closes_at: datetime
    version: int = 1
    rules: SectionRules | None = None


@dataclass(frozen=True, slots=True)
class Student:
    id: UUID
    student_number: str
    first_name: str
    last_name: str
    email: str
    enrollment_status: str


@dataclass(frozen=True, slots=True)
class Registration:
    id: UUID
    student_id: UUID
    section_id: UUID
    status: str
    registered_at: datetime
    dropped_at: datetime | None


@dataclass(frozen=True, slots=True)
class WaitlistEntry:
    student_id: UUID
    section_id: UUID
    sequence: int
    joined_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class SectionQuery:
    semester_id: UUID | None = None
    course_code: str | None = None
    available_only: bool = False


@dataclass(frozen=True, slots=True)
class SectionPage:
    sections: tuple[Section, ...]
    cursors: tuple[str, ...]
    has_next_page: bool
    total_count: int


class SwapOutcome(StrEnum):
    SWAPPED = "SWAPPED"
    WAITLISTED_KEEPING_CURRENT = "WAITLISTED_KEEPING_CURRENT"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class SwapAnswer:
    student_id: UUID
    outcome: SwapOutcome
    reason: Rejection | None = None
    waitlist_position: int | None = None
