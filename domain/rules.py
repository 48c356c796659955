"""Registration rules across a student's schedule (contract/rules.graphql): the static data
the hot path checks them against, and the student's own rule state.

The checks themselves run in Redis, in the student's slot, atomically with the
reservation of credits and meeting time they guard (infrastructure/redis/reserve.lua);
this module holds the shapes both sides agree on and the pure conversions.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.errors import BadInput

DEFAULT_CREDITS = 3.0
DEFAULT_MAX_CREDITS = 18.0
DEFAULT_OFFER_HOURS = 24
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MINUTES_PER_DAY = 24 * 60
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Rejection(StrEnum):
    """Why a registration, swap or promotion was refused: the `reason` of a REJECTED
    answer, of an attempts-log entry, and the rule a student in line broke. The values are
    the contract's words and the scripts' replies (reserve.lua, confirm.lua, register.lua)."""

    # the section (register.lua)
    SECTION_NOT_FOUND = "SECTION_NOT_FOUND"
    SECTION_INACTIVE = "SECTION_INACTIVE"
    # The section's live state is being rebuilt after a Redis loss, the student's slot is
    # not loaded, or a reservation or drop of the section is under way: retrying soon
    # succeeds.
    UNAVAILABLE = "UNAVAILABLE"
    # the rules, in the order reserve.lua checks them
    HOLD = "HOLD"
    NOT_YET_OPEN = "NOT_YET_OPEN"
    REGISTRATION_CLOSED = "REGISTRATION_CLOSED"  # also the section's own window
    PREREQUISITE_NOT_MET = "PREREQUISITE_NOT_MET"
    LINK_REQUIRED = "LINK_REQUIRED"
    DUPLICATE_COURSE = "DUPLICATE_COURSE"
    TIME_CONFLICT = "TIME_CONFLICT"
    CREDIT_LIMIT = "CREDIT_LIMIT"
    WAITLIST_FULL = "WAITLIST_FULL"
    # a swap: the section to add is held already, or the one to drop is not enrolled
    ALREADY_ENROLLED = "ALREADY_ENROLLED"
    ALREADY_WAITLISTED = "ALREADY_WAITLISTED"
    NOT_ENROLLED = "NOT_ENROLLED"


# The rules a student in line can break when a seat is handed to them (confirm.lua): a
# removal for one of these goes to the attempts log.
LINE_RULES = frozenset(
    {
        Rejection.HOLD,
        Rejection.DUPLICATE_COURSE,
        Rejection.TIME_CONFLICT,
        Rejection.CREDIT_LIMIT,
        Rejection.PREREQUISITE_NOT_MET,
        Rejection.LINK_REQUIRED,
    }
)


class WaitlistMode(StrEnum):
    AUTO_ENROLL = "AUTO_ENROLL"
    OFFER = "OFFER"


def minutes(hhmm: str, field_name: str = "time") -> int:
    """'HH:MM' (24-hour) as minutes after midnight."""
    match = _HHMM.match(hhmm)
    if match is None:
        raise BadInput(f"{field_name} must be HH:MM, 24-hour", field=field_name)
    return int(match.group(1)) * 60 + int(match.group(2))


@dataclass(frozen=True, slots=True)
class Meeting:
    days: tuple[str, ...]
    start_time: str
    end_time: str
    location: str | None = None

    def validate(self) -> None:
        if not self.days or any(d not in WEEKDAYS for d in self.days):
            raise BadInput("a meeting needs one or more days", field="days")
        if minutes(self.end_time, "endTime") <= minutes(self.start_time, "startTime"):
            raise BadInput("a meeting must end after it starts", field="endTime")

    def intervals(self) -> list[tuple[int, int]]:
        """The minutes of the week it occupies, as [start, end) pairs."""
        start, end = minutes(self.start_time), minutes(self.end_time)
        return [
            (
                WEEKDAYS.index(day) * MINUTES_PER_DAY + start,
                WEEKDAYS.index(day) * MINUTES_PER_DAY + end,
            )
            for day in sorted(set(self.days), key=WEEKDAYS.index)
        ]


@dataclass(frozen=True, slots=True)
class SectionRules:
    """A section's static rule data: what a registration for it is checked against."""

    course_id: UUID
    semester_id: UUID
    credits: float = DEFAULT_CREDITS
    meetings: tuple[Meeting, ...] = ()
    linked_sections: tuple[UUID, ...] = ()
    prerequisites: tuple[UUID, ...] = ()  # of the section's course
    waitlist_capacity: int | None = None
    waitlist_mode: WaitlistMode = WaitlistMode.AUTO_ENROLL
    offer_hours: int = DEFAULT_OFFER_HOURS

    def intervals(self) -> list[tuple[int, int]]:
        return [i for m in self.meetings for i in m.intervals()]

    def fingerprint(self) -> str:
        """What a student's holding copies of these rules (course, credits, meeting minutes,
        linked sections) as a short stable text, the same in every process. The section's
        live state keeps its current one, and a seat step checked against other rules (a
        request that read them before staff changed them) is refused: try again
        (register.lua), so no holding keeps rules older than the section's."""
        linked = sorted(str(s) for s in self.linked_sections)
        text = repr((str(self.course_id), float(self.credits), self.intervals(), linked))
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Holding(StrEnum):
    """How a student holds a section, in their rule state: a small state machine
    (docs/holdings.md). R, P and D are in flight, with a deadline after which the sweeper
    settles them; E, R, P and a D that was E count credits and meeting time."""

    ENROLLED = "E"
    WAITING = "W"
    RESERVED = "R"  # checked and reserved by an in-flight request, not yet settled
    PROMOTING = "P"  # waiting, checked again and reserved while a seat is handed over
    LEAVING = "D"  # being given up: the seat or place goes first, then the holding


@dataclass(frozen=True, slots=True)
class Leaving:
    """A holding in state D: its seat or place must be given up (drop.lua), then the holding
    forgotten, both under `operation`: drop.lua runs once per operation, so whoever finishes
    it (the request, its retry, the sweeper) gets the same answer and the seat goes once."""

    section_id: UUID
    operation: str = ""
    why: str = ""  # not asked for by the student: LINK_REQUIRED (Seats.drop)


@dataclass(frozen=True, slots=True)
class Settled:
    """What a settle did: per section OK | SAME (it was there already) | NOTDUE |
    REFUSED:<state found> (a move the caller did not expect: logged, never forced), and the
    holdings a swap left LEAVING."""

    words: dict[UUID, str]
    leaving: list[Leaving]


@dataclass(frozen=True, slots=True)
class Reservation:
    """What reserve answered: a verdict per section, and the deadline (epoch ms, Redis's
    clock) of the reservations it made, which the section steps of the saga carry."""

    deadline: int
    verdicts: list[Verdict]
    generation: str = ""  # of the student's slot: settle tells a slot reloaded under it


@dataclass(frozen=True, slots=True)
class Marked:
    """A drop's first step (the holding became D): the state it was in (E, W, P, D, None
    when not held) and the sections that go with it (a lecture whose last lab it was).
    `busy`: a request's reservation of it is in flight. `unavailable`: the student's rule
    state is not loaded. `operation`: the one it is leaving under (another drop's, when
    that one marked it first: its seat goes under that operation, once)."""

    found: Holding | None
    dependants: list[UUID]
    busy: bool = False
    unavailable: bool = False
    operation: str = ""


@dataclass(frozen=True, slots=True)
class HoldingState:
    """One entry of a student's holdings as the sweeper reads it."""

    section_id: UUID
    holding: Holding
    deadline: int | None
    operation: str


@dataclass(frozen=True, slots=True)
class HeldSection:
    section_id: UUID
    rules: SectionRules
    holding: Holding
    swap_from: UUID | None = None  # waiting here to replace this enrolled section


@dataclass(frozen=True, slots=True)
class StudentRules:
    """A student's own rule state, mirrored from Postgres into their Redis slot."""

    student_id: UUID
    holds: int = 0
    max_credits: float = DEFAULT_MAX_CREDITS
    tickets: dict[UUID, tuple[datetime, datetime]] = field(default_factory=dict)
    completed_courses: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The student-side check of one section: reserved, already held, or refused.
    `again`: reserved or settled by this operation already (a retry): the section step may
    have run, and only this operation can have placed the student there."""

    section_id: UUID
    reason: Rejection | None = None
    held: Holding | None = None
    again: bool = False

    @property
    def passed(self) -> bool:
        return self.reason is None


class HolderKind(StrEnum):
    ENROLLED = "e"  # promoted at once (no rule checks)
    PENDING = "p"  # seat held while the rules are checked again
    OFFERED = "o"  # seat offered until it expires (OFFER mode)


@dataclass(frozen=True, slots=True)
class Holder:
    """A student in line that a freed seat went to, or is held for."""

    section_id: UUID
    student_id: UUID
    kind: HolderKind


@dataclass(frozen=True, slots=True)
class Attempt:
    """A refused registration, for the attempts log."""

    student_id: UUID
    section_id: UUID
    reason: Rejection


@dataclass(frozen=True, slots=True)
class DueReservation:
    """A saga step past its deadline (a reservation, a promotion or a drop): its request may
    have died between the saga's steps; the sweeper settles it."""

    student_id: UUID
    semester_id: UUID
    section_id: UUID
    operation: str
    index_entry: str = ""  # the store's handle on the request's reservations, to clear them
