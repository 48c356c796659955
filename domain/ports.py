"""Interfaces the rules use to reach storage; `infrastructure/` implements them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol
from uuid import UUID

from domain.changes import Change
from domain.leases import Lease
from domain.live import Standing, WaitlistStatus
from domain.model import (
    Course,
    DropAnswer,
    DropOutcome,
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
    SwapAnswer,
    WaitlistEntry,
)
from domain.rules import (
    Attempt,
    DueReservation,
    HeldSection,
    Holder,
    Holding,
    HoldingState,
    Marked,
    Rejection,
    Reservation,
    Settled,
    StudentRules,
)


@dataclass(frozen=True, slots=True)
class CapacityChange:
    """Result of a capacity change in the reservation store."""

    ok: bool
    enrolled: int
    available_seats: int
    promoted: int


class Seats(Protocol):
    """Live seats and waitlists as register, drop, swap and promotion take, give up and
    hand them on. Every call on one section is atomic with the persistence job it enqueues
    and the event it publishes."""

    async def register(
        self,
        student_id: UUID,
        section_ids: Sequence[UUID],
        request_id: str,
        op: str = "",
        deadline: int = 0,
        replaces: UUID | None = None,
        held: Collection[UUID] = (),
        checked: Mapping[UUID, str] | None = None,
    ) -> list[SectionResult]:
        """Take a seat or a place in line in each section, once per `op` (a repeat answers
        what the first run did), and not after `deadline` (epoch ms; the reservation the
        step acts under: then UNAVAILABLE). A place in line `replaces` an enrolled section
        (a swap left waiting). In the sections `held` (the student's slot holds them, no
        rules were checked) only what the student has is said: ALREADY_*, else UNAVAILABLE.
        `checked`: per section, the fingerprint of the rules its reservation was checked
        against (SectionRules.fingerprint); if staff changed them since, UNAVAILABLE."""

    async def drop(
        self,
        student_id: UUID,
        section_ids: Sequence[UUID],
        request_id: str,
        checked: bool,
        op: str = "",
        deadline: int = 0,
        why: str = "",
    ) -> list[tuple[DropAnswer, list[Holder]] | None]:
        """Drop each section (None where unknown to the store), and who each freed seat went
        to or is held for. With `checked` (rules on) a seat is held pending the next
        student's check instead of going to them at once. Once per `op`, not after
        `deadline`. `why`: the student did not ask for this drop (LINK_REQUIRED: a linked
        section dropped with its last partner); the stream entry carries it (a notice)."""

    async def resolve(
        self,
        student_id: UUID,
        section_id: UUID,
        action: str,
        reason: str,
        request_id: str,
        op: str = "",
        deadline: int = 0,
    ) -> tuple[WaitlistStatus, list[Holder]]:
        """Settle a seat held for a student in line: claim, skip (with the rule broken),
        decline or expire. (status, who the seat went on to). Once per `op`; a claim not
        after `deadline` (the promotion's reservation)."""

    async def due_holds(self, shards: Sequence[int], limit: int = 200) -> list[Holder]:
        """Held seats past their time: lapsed offers, and pending checks whose request died."""

    async def standing(self, student_id: UUID, section_id: UUID) -> Standing | None:
        """Enrolled, waiting (with rank) or neither; None when the section is unknown."""


class SeatReads(Protocol):
    """What the live seats say, for reads."""

    async def states(self, section_ids: Sequence[UUID]) -> list[SeatState | None]: ...

    async def ranks(self, student_id: UUID, section_ids: Sequence[UUID]) -> list[int | None]:
        """1-based waitlist rank per section, None where the student is not waiting."""


class PendingChanges(Protocol):
    """What the seat scripts changed for some students that the record (Postgres) may not
    hold yet: their entries in the shard streams, which keep only what the persister has
    not acknowledged. A read merges them into the record to show a student their own
    writes (domain/schedule.py), so they must be read before the record is."""

    async def of_students(self, student_ids: Sequence[UUID]) -> list[list[Change]]:
        """Each student's entries, in stream order per shard."""


class SectionSeats(Protocol):
    """Staff's changes to a section's live state."""

    async def open_section(self, setup: SectionSetup) -> None:
        """Create the section's live state, or refresh its static data if it exists."""

    async def holders(self, section_id: UUID) -> list[UUID]:
        """The students the section has enrolled or in line (a seat held for them too)."""

    async def set_capacity(
        self, section_id: UUID, total_seats: int, request_id: str, checked: bool
    ) -> tuple[CapacityChange, list[Holder]] | None: ...


class SeatStore(Seats, SeatReads, SectionSeats, Protocol):
    """The live seats, every use of them: one adapter (Redis) implements them all."""


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

    `begin` returns the stored answer of an earlier request, or None after taking the
    key for this request; it raises BadInput when the key was used with other input.
    """

    async def begin(
        self, student_id: UUID, key: str, fingerprint: str
    ) -> RegisterAnswer | DropAnswer | SwapAnswer | None: ...

    async def finish(
        self,
        student_id: UUID,
        key: str,
        fingerprint: str,
        answer: RegisterAnswer | DropAnswer | SwapAnswer,
    ) -> None: ...

    async def abandon(self, student_id: UUID, key: str) -> None:
        """Give the key back: its request failed before answering."""


class RegistrationOutcomes(Protocol):
    """Told what each register and drop that ran answered (not a remembered answer): what
    operators count."""

    def registered(self, answer: RegisterAnswer) -> None: ...

    def dropped(self, outcome: DropOutcome | None) -> None:
        """None: the student or the section was not found."""


class Unobserved:
    """No one is told the outcomes."""

    def registered(self, answer: RegisterAnswer) -> None:
        pass

    def dropped(self, outcome: DropOutcome | None) -> None:
        pass


class StudentDirectory(Protocol):
    """Enrollment status of students for the hot path, without Postgres."""

    async def enrollment_status(self, student_id: UUID) -> str | None: ...

    async def remember(self, student_id: UUID, status: str) -> None: ...

    async def created(self, student_id: UUID, status: str) -> None:
        """A new student: their status, and a rule state that is empty and complete."""


class CatalogWrites(Protocol):
    """Staff's writes to the catalog in the system of record (Postgres)."""

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


class CatalogReads(Protocol):
    """Catalog entities by id; the batches (the DataLoaders') answer in the order asked,
    None for unknown ids."""

    async def semesters(self, ids: Sequence[UUID]) -> list[Semester | None]: ...

    async def courses(self, ids: Sequence[UUID]) -> list[Course | None]: ...

    async def sections(self, ids: Sequence[UUID]) -> list[Section | None]: ...

    async def students(self, ids: Sequence[UUID]) -> list[Student | None]: ...

    async def section_setup(self, section_id: UUID) -> SectionSetup | None: ...


class CatalogQueries(Protocol):
    """Listings and searches of the catalog, registrations and waitlists."""

    async def all_semesters(self) -> list[Semester]:
        """Every semester, the latest registration window first."""

    async def courses_by_code(self, codes: Sequence[str]) -> list[Course | None]: ...

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


class Catalog(CatalogWrites, CatalogReads, CatalogQueries, Protocol):
    """The system of record: catalog entities, registrations and waitlists in Postgres."""


class ChangeStream(Protocol):
    """The shard streams the seat scripts append to, read through a consumer group, and
    the leases that give each shard one worker at a time. Taking entries (adopt, read)
    is refused with Fenced unless the lease is still the caller's."""

    async def prepare(self, shard: int) -> None:
        """Create the shard's consumer group if missing."""

    async def adopt(self, lease: Lease) -> int:
        """Take every pending entry of the shard (left by earlier owners); the count. Only
        after the record was fenced (ChangeLog.take_over): an earlier owner can then no
        longer commit what it holds."""

    async def read(self, lease: Lease, count: int, backlog: bool, block_ms: int) -> list[Change]:
        """Entries delivered to this holder but unacknowledged (backlog) or new ones,
        waiting up to `block_ms` for a new one."""

    async def ack(self, shard: int, changes: Sequence[Change]) -> None: ...

    async def count_attempt(self, shard: int, change: Change) -> int: ...

    async def dead_letter(self, shard: int, change: Change, error: str) -> None: ...

    async def heartbeat(self, consumer: str, lifetime_ms: int) -> list[str]:
        """Announce this worker; the ids of all live workers."""

    async def leave(self, consumer: str) -> None: ...

    async def acquire(
        self, shard: int, consumer: str, lifetime_ms: int, above: int = 0
    ) -> Lease | None:
        """The shard's lease if no one holds it, with an epoch larger than every earlier
        grant's and than `above`; None if it is held."""

    async def renew(self, lease: Lease, lifetime_ms: int) -> bool:
        """Extend the lease if it is still held; False once it lapsed."""

    async def release(self, lease: Lease) -> None:
        """Hand the lease back if it is still held."""


class ChangeLog(Protocol):
    """Applies changes to the record (Postgres), exactly once per shard, and only from the
    shard's latest owner: every write checks the lease's epoch in its own transaction."""

    async def take_over(self, lease: Lease) -> None:
        """Make this lease the shard's only writer, before its holder adopts or reads
        anything; Fenced if this epoch or a later one already took the shard."""

    async def apply(self, lease: Lease, changes: Sequence[Change]) -> int:
        """Apply, in one transaction, the changes not applied yet; the count applied.
        Fenced, with nothing written, once another lease took the shard over."""

    async def apply_prefix(
        self, lease: Lease, changes: Sequence[Change]
    ) -> tuple[int, Change | None, BaseException | None]:
        """Apply one by one until one fails: (count applied, failing change, its error)."""

    async def skip(self, lease: Lease, change: Change) -> None:
        """Record a dead-lettered change as handled."""


class RuleChecks(Protocol):
    """A student's rule state in their own Redis slot, as the hot path uses it: checks and
    reservations, and the holdings' state machine (docs/holdings.md). Every move of a
    holding is a compare-and-set from the state the caller expects; `op` names the
    operation (request, promotion) a step belongs to, so a step run twice (a retry, a
    re-sent pipeline) acts once."""

    async def reserve(
        self,
        student_id: UUID,
        sections: Sequence[SectionSetup],
        all_section_ids: Sequence[UUID],
        op: str,
        swap_from: UUID | None = None,
    ) -> Reservation:
        """Check each section against the rules and reserve credits and meeting time for
        those that pass (R), until `settle` or a sweep after the deadline. `all_section_ids`
        is the whole request (a linked partner may be in it)."""

    async def settle(
        self,
        student_id: UUID,
        outcomes: Sequence[tuple[SectionSetup, Holding | None]],
        op: str,
        *,
        from_: str = "R-",
        due: bool = False,
        indexed: Sequence[SectionSetup] = (),
        attempts: Sequence[Attempt] = (),
        request_id: str = "",
        generation: str = "",
    ) -> Settled:
        """Move each holding from one of the states `from_` ("-": none) to ENROLLED, WAITING
        or gone (None); with `due`, only once its deadline passed (the sweeper). A request
        settles from R, or from none if the slot was reloaded since its `generation` (a lost
        cluster node took the reservation): the seat it took must count all the same. In
        the same round trip: clear the index entry of `indexed` and log refused `attempts`
        once. A swap's new section becoming ENROLLED leaves the replaced one LEAVING
        (Settled.leaving)."""

    async def leave(self, student_id: UUID, section: SectionSetup, op: str) -> Marked:
        """A drop's first step: the holding (and those that depend on it) become LEAVING,
        indexed for the sweeper."""

    async def forget(
        self,
        student_id: UUID,
        semester_id: UUID,
        section_ids: Sequence[UUID],
        from_: str,
        op: str = "",
        indexed: Sequence[SectionSetup] = (),
    ) -> None:
        """Forget holdings given up (from LEAVING or WAITING), clearing the index entry of
        `indexed` under `op` in the same round trip."""

    async def done(self, student_id: UUID, op: str, indexed: Sequence[SectionSetup]) -> None:
        """Clear the index entry a saga made for the sweeper, once it finished."""

    async def confirm_promotion(
        self,
        student_id: UUID,
        section: SectionSetup,
        op: str,
        reserve: bool = True,
        take_over: bool = True,
    ) -> tuple[Rejection | None, int, str]:
        """A seat is being given to a student in line: check the rules again. (None, the
        deadline, the slot's generation) when they still hold (and, with `reserve`, the
        holding is PROMOTING, its credits and time reserved); else (the rule broken, or
        UNAVAILABLE: the slot is not loaded or a drop of it is under way; 0, generation),
        the holding unchanged. Without `take_over`, a holding RESERVED by the student's own
        request under way answers UNAVAILABLE."""

    async def holdings(self, student_id: UUID, semester_id: UUID) -> list[HoldingState]: ...

    async def due_reservations(
        self, shards: Sequence[int], limit: int = 200
    ) -> list[DueReservation]: ...

    async def clear_reservation(self, due: DueReservation) -> None: ...


class RuleMirror(Protocol):
    """The mirror in each student's slot of what staff set in Postgres."""

    async def mirror(self, rules: StudentRules) -> None:
        """Write what staff set for a student (holds, tickets, credit limit, completed)."""

    async def load(
        self, rules: StudentRules, held: Mapping[UUID, Sequence[HeldSection]], generation: str
    ) -> None:
        """A rebuild: the student's rule state and settled holdings per semester from the
        record, holdings in flight kept; marks the slot loaded, of this generation."""

    async def refresh_holdings(self, setup: SectionSetup, student_ids: Sequence[UUID]) -> int:
        """Staff changed the section's rules: each of these students' holding of it (in
        whatever state) takes its new credits, meeting time and links, one atomic step per
        student. The number of holdings changed."""


class RuleStore(RuleChecks, RuleMirror, Protocol):
    """A student's rule state, every use of it: one adapter (Redis) implements them all."""


class SectionDirectory(Protocol):
    """Sections' static data (window, rules) for the hot path: in-process, kept current by
    announcements, backed by Redis."""

    async def setups(self, section_ids: Sequence[UUID]) -> list[SectionSetup | None]: ...

    async def announce(self, section_ids: Sequence[UUID]) -> None:
        """Tell every API process these sections' static data changed."""
