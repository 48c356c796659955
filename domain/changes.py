"""Persistence changes emitted by the seat scripts, and how a batch of them folds into rows.

A batch is applied in one transaction. Folding keeps only each row's final state, so one
multi-row statement per table writes the whole batch and no row is touched twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from domain.rules import LINE_RULES

ENROLLED = "enrolled"
DROPPED = "dropped"


class ChangeKind(StrEnum):
    ENROLL = "enroll"
    JOIN = "join"  # joined the waitlist
    DROP = "drop"
    LEAVE = "leave"  # left the waitlist
    PROMOTE = "promote"  # waitlist head took a freed seat
    CAPACITY = "capacity"
    OFFER = "offer"  # a freed seat offered to a student in line, until `expires`
    ATTEMPT = "attempt"  # a refused registration, for the attempts log
    # A waitlist place taken to replace an enrolled section; the join carries it now (f),
    # entries of this kind are only read from streams written before.
    SWAP_WAIT = "swapwait"


@dataclass(frozen=True, slots=True)
class Change:
    """One stream entry. `position` orders entries within their shard's stream."""

    id: str
    position: tuple[int, int]
    kind: ChangeKind
    section_id: UUID
    version: int
    at: datetime
    student_id: UUID | None = None
    sequence: int | None = None
    total: int | None = None
    request_id: str = ""
    # A refusal's reason (domain.rules.Rejection), or why a student left the line (a rule
    # broken, OFFER_EXPIRED, OFFER_DECLINED): text as the stream holds it, so an entry is
    # never refused over a word.
    reason: str | None = None
    expires: datetime | None = None
    replaces: UUID | None = None  # JOIN: the enrolled section the place would replace


Key = tuple[UUID, UUID]  # (student_id, section_id)


@dataclass(slots=True)
class RegistrationRow:
    status: str
    registered_at: datetime | None
    dropped_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    student_id: UUID
    section_id: UUID
    reason: str
    at: datetime
    request_id: str


@dataclass(slots=True)
class SectionRow:
    version: int
    total_seats: int | None = None


@dataclass(slots=True)
class Effects:
    """Final state of every row a batch touches."""

    registrations: dict[Key, RegistrationRow] = field(default_factory=dict)
    waitlist: dict[Key, tuple[int, datetime]] = field(default_factory=dict)
    waitlist_removed: set[Key] = field(default_factory=set)
    sections: dict[UUID, SectionRow] = field(default_factory=dict)
    offers: dict[Key, datetime] = field(default_factory=dict)
    swaps: dict[Key, UUID] = field(default_factory=dict)
    attempts: list[AttemptRow] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self._touch_section(change)
        if change.student_id is None:
            return
        key = (change.student_id, change.section_id)
        if change.kind in (ChangeKind.ENROLL, ChangeKind.PROMOTE):
            self.registrations[key] = RegistrationRow(ENROLLED, change.at, None)
        if change.kind is ChangeKind.ATTEMPT or (
            change.kind is ChangeKind.LEAVE and change.reason and change.reason in LINE_RULES
        ):
            self.attempts.append(
                AttemptRow(
                    change.student_id,
                    change.section_id,
                    str(change.reason),
                    change.at,
                    change.request_id,
                )
            )
        if change.kind is ChangeKind.OFFER:
            assert change.expires is not None, "an offer carries its expiry"
            self.offers[key] = change.expires
        if change.kind is ChangeKind.SWAP_WAIT:
            assert change.replaces is not None, "a swap's place names what it replaces"
            self.swaps[key] = change.replaces
        if change.kind in (ChangeKind.PROMOTE, ChangeKind.LEAVE):
            self.waitlist.pop(key, None)
            self.offers.pop(key, None)
            self.swaps.pop(key, None)
            self.waitlist_removed.add(key)
        elif change.kind is ChangeKind.JOIN:
            assert change.sequence is not None, "a join carries its waitlist sequence"
            self.waitlist_removed.discard(key)
            self.waitlist[key] = (change.sequence, change.at)
            if change.replaces is not None:  # a swap left waiting (register.lua)
                self.swaps[key] = change.replaces
        elif change.kind is ChangeKind.DROP:
            earlier = self.registrations.get(key)
            registered_at = earlier.registered_at if earlier else None
            self.registrations[key] = RegistrationRow(DROPPED, registered_at, change.at)

    def _touch_section(self, change: Change) -> None:
        row = self.sections.setdefault(change.section_id, SectionRow(change.version))
        row.version = max(row.version, change.version)
        if change.kind is ChangeKind.CAPACITY:
            row.total_seats = change.total


def parse_position(stream_id: str) -> tuple[int, int]:
    """A stream id "<ms>-<seq>" as a comparable pair."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def after(watermark: tuple[int, int] | None, changes: Iterable[Change]) -> list[Change]:
    """The changes not yet applied: those past the shard's watermark, in stream order."""
    ordered = sorted(changes, key=lambda c: c.position)
    if watermark is None:
        return ordered
    return [c for c in ordered if c.position > watermark]


def fold(changes: Iterable[Change]) -> Effects:
    effects = Effects()
    for change in changes:
        effects.add(change)
    return effects
