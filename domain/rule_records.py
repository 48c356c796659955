"""What staff record about the registration rules (course rules, holds, time tickets, a
change of a section's rules) and the refused attempts, with the port to the record that
keeps them (Postgres). Beside its types rather than in ports.py, which the hot path's
ports fill."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol
from uuid import UUID

from domain.model import Course, SectionSetup, Student
from domain.rules import DEFAULT_CREDITS, Meeting, SectionRules, StudentRules, WaitlistMode


class Keep(Enum):
    """A setting left out of a change: it keeps its value (None means "no limit" there)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class CourseRules:
    course_id: UUID
    credits: float = DEFAULT_CREDITS
    prerequisites: tuple[UUID, ...] = ()


@dataclass(frozen=True, slots=True)
class Hold:
    id: UUID
    student_id: UUID
    reason: str
    placed_at: datetime


@dataclass(frozen=True, slots=True)
class TimeTicket:
    student_id: UUID
    semester_id: UUID
    opens_at: datetime
    closes_at: datetime


@dataclass(frozen=True, slots=True)
class LoggedAttempt:
    """A registration the rules refused, as the workers logged it (newest first on reads)."""

    student_id: UUID
    section_id: UUID
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SectionRulesChange:
    """What setSectionRules changes; None (or KEEP for the capacity, where None means
    unlimited) leaves a setting as it is. An empty tuple clears meetings or links."""

    meetings: tuple[Meeting, ...] | None = None
    linked_sections: tuple[UUID, ...] | None = None
    waitlist_capacity: int | Keep | None = KEEP
    waitlist_mode: WaitlistMode | None = None
    offer_hours: int | None = None


class RuleWrites(Protocol):
    """Staff's writes to the rules in the system of record, one unit of work each, and what
    applying them to the live state reads back."""

    async def set_course_rules(
        self, course_id: UUID, credits: float | None, prerequisites: Sequence[UUID] | None
    ) -> Course | None:
        """None when the course is unknown. BadInput when a chain of prerequisites would lead
        back to the course: checked in the writing transaction, under a lock, so two changes
        at once cannot close a cycle between them."""

    async def set_section_rules(self, section_id: UUID, change: SectionRulesChange) -> None: ...

    async def place_hold(self, student_id: UUID, reason: str) -> Hold: ...

    async def lift_hold(self, hold_id: UUID) -> UUID | None:
        """The hold's student; None when the hold is unknown or already lifted."""

    async def set_time_tickets(self, tickets: Sequence[TimeTicket]) -> None:
        """Create or replace each (student, semester) ticket, all in one transaction."""

    async def set_max_credits(self, student_id: UUID, max_credits: float) -> Student | None: ...

    async def record_completed(self, student_id: UUID, course_id: UUID) -> None:
        """Idempotent: recording a course twice keeps the first completion."""

    async def setups_of_course(self, course_id: UUID) -> list[SectionSetup]:
        """Every section of the course, in every semester, as the live state needs it."""

    async def student_rules(self, ids: Sequence[UUID]) -> list[StudentRules | None]: ...

    async def students_by_number(self, numbers: Sequence[str]) -> list[UUID | None]: ...


class RuleReads(Protocol):
    """The rules as the DataLoaders read them: batched by id, in the order asked, None for
    unknown ids."""

    async def course_rules(self, ids: Sequence[UUID]) -> list[CourseRules | None]: ...

    async def section_rules(self, ids: Sequence[UUID]) -> list[SectionRules | None]: ...

    async def holds(self, student_ids: Sequence[UUID]) -> list[list[Hold]]:
        """Active holds (not lifted), oldest first."""

    async def credits(self, keys: Sequence[tuple[UUID, UUID]]) -> list[float]:
        """Per (student, semester): credits of the sections enrolled in that semester."""

    async def attempts(self, student_ids: Sequence[UUID], first: int) -> list[list[LoggedAttempt]]:
        """Each student's `first` latest refused attempts, newest first."""


class RuleRecords(RuleWrites, RuleReads, Protocol):
    """The rules in the system of record (Postgres)."""
