"""Interfaces the rules use to reach storage; `infrastructure/` implements them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from domain.changes import Change
from domain.live import Standing
from domain.model import (
    Course,
    DropAnswer,
    RegisterAnswer,
    Registration,
    SeatState,
    Section,
    SectionPage,
    SectionQuery,
    SectionResult,
    SectionSetup,
    Semester,
    Student,
    WaitlistEntry,
)


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """Result of a capacity change in the reservation store."""

    ok: bool
    enrolled: int
    available_seats: int
    promoted: int


class SeatStore(Protocol):
    """Live seats and waitlists. Every call on one section is atomic with the persistence
    job it enqueues and the event it publishes."""

    async def register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str
    ) -> list[SectionResult]: ...

    async def drop(self, student_id: UUID, section_id: UUID, request_id: str) -> DropAnswer | None:
        """None when the section is unknown to the store."""

    async def set_capacity(
        self, section_id: UUID, total_seats: int, request_id: str
    ) -> CapacityChange | None: ...

    async def states(self, section_ids: Sequence[UUID]) -> list[SeatState | None]: ...

    async def ranks(self, student_id: UUID, section_ids: Sequence[UUID]) -> list[int | None]:
        """1-based waitlist rank per section, None where the student is not waiting."""

    async def standing(self, student_id: UUID, section_id: UUID) -> Standing | None:
        """Enrolled, waiting (with rank) or neither; None when the section is unknown."""

    async def open_section(self, setup: SectionSetup) -> None:
        """Create the section's live state, or refresh its static data if it exists."""


class Listener(Protocol):
    def deliver(self, channel: str, event: Any) -> None: ...

    def resync(self) -> None: ...


class LiveEvents(Protocol):
    """Section events pushed to this process (pub/sub), fanned out to listeners."""

    async def watch(self, section_ids: Sequence[UUID], listener: Listener) -> None:
        """Returns once events of every section will reach the listener."""

    async def unwatch(self, section_ids: Sequence[UUID], listener: Listener) -> None: ...


class IdempotencyStore(Protocol):
    """Remembers answers per (student, key) for 24 hours.

    `begin` returns the stored answer of an earlier request, or None after claiming the
    key for this request; it raises BadInput when the key was used with other input.
    """

    async def begin(
        self, student_id: UUID, key: str, fingerprint: str
    ) -> RegisterAnswer | DropAnswer | None: ...

    async def finish(
        self, student_id: UUID, key: str, fingerprint: str, answer: RegisterAnswer | DropAnswer
    ) -> None: ...

    async def abandon(self, student_id: UUID, key: str) -> None:
        """Release a claim whose request failed before answering."""


class StudentDirectory(Protocol):
    """Enrollment status of students for the hot path, without Postgres."""

    async def enrollment_status(self, student_id: UUID) -> str | None: ...

    async def remember(self, student_id: UUID, status: str) -> None: ...


class Catalog(Protocol):
    """The system of record: catalog entities, registrations and waitlists in Postgres."""

    async def create_semester(
        self,
        name: str,
        start_date: date,
        end_date: date,
        registration_start: datetime,
        registration_end: datetime,
    ) -> Semester: ...

    async def create_course(self, code: str, name: str) -> Course: ...

    async def create_section(
        self, course_id: UUID, semester_id: UUID, section_number: str, total_seats: int
    ) -> Section: ...

    async def create_student(
        self, student_number: str, first_name: str, last_name: str, email: str
    ) -> Student: ...

    async def set_student_status(self, student_id: UUID, status: str) -> Student | None: ...

    async def semesters(self, ids: Sequence[UUID]) -> list[Semester | None]: ...

    async def all_semesters(self) -> list[Semester]:
        """Every semester, the latest registration window first."""

    async def courses(self, ids: Sequence[UUID]) -> list[Course | None]: ...

    async def courses_by_code(self, codes: Sequence[str]) -> list[Course | None]: ...

    async def sections(self, ids: Sequence[UUID]) -> list[Section | None]: ...

    async def students(self, ids: Sequence[UUID]) -> list[Student | None]: ...

    async def section_setup(self, section_id: UUID) -> SectionSetup | None: ...

    async def sections_of_courses(
        self, course_ids: Sequence[UUID], semester_id: UUID | None
    ) -> list[list[Section]]: ...

    async def find_sections(
        self, query: SectionQuery, first: int, after: str | None, available: set[UUID] | None
    ) -> SectionPage: ...

    async def section_ids(self, query: SectionQuery) -> list[UUID]: ...

    async def registrations(
        self, student_ids: Sequence[UUID], status: str | None
    ) -> list[list[Registration]]: ...

    async def waitlists(self, student_ids: Sequence[UUID]) -> list[list[WaitlistEntry]]: ...


class ChangeStream(Protocol):
    """The shard streams the seat scripts append to, read through a consumer group, and
    the leases that give each shard one worker at a time."""

    async def prepare(self, shard: int) -> None:
        """Create the shard's consumer group if missing."""

    async def adopt(self, shard: int, consumer: str) -> int:
        """Take every pending entry of the shard (left by earlier owners); the count."""

    async def read(
        self, shard: int, consumer: str, count: int, backlog: bool, block_ms: int
    ) -> list[Change]:
        """Entries delivered to this consumer but unacknowledged (backlog) or new ones."""

    async def ack(self, shard: int, changes: Sequence[Change]) -> None: ...

    async def count_attempt(self, shard: int, change: Change) -> int: ...

    async def dead_letter(self, shard: int, change: Change, error: str) -> None: ...

    async def heartbeat(self, consumer: str, lifetime_ms: int) -> list[str]:
        """Announce this worker; the ids of all live workers."""

    async def leave(self, consumer: str) -> None: ...

    async def acquire(self, shard: int, consumer: str, lifetime_ms: int) -> bool: ...

    async def renew(self, shard: int, consumer: str, lifetime_ms: int) -> bool: ...

    async def release(self, shard: int, consumer: str) -> None: ...


class ChangeLog(Protocol):
    """Applies changes to the record (Postgres), exactly once per shard."""

    async def apply(self, shard: int, changes: Sequence[Change]) -> int:
        """Apply, in one transaction, the changes not applied yet; the count applied."""

    async def apply_prefix(
        self, shard: int, changes: Sequence[Change]
    ) -> tuple[int, Change | None, BaseException | None]:
        """Apply one by one until one fails: (count applied, failing change, its error)."""

    async def skip(self, shard: int, change: Change) -> None:
        """Record a dead-lettered change as handled."""
