"""Types of contract/rules.graphql that stand on their own: weekdays and meetings, waitlist
modes, holds, the staff's rule inputs, and the swap's input and answer. The types that
point back at a section, semester or waitlist status (TimeTicket, RegistrationAttempt,
ClaimPayload) live beside those in schema/types.py."""

from __future__ import annotations

from datetime import datetime
from enum import Enum, StrEnum
from uuid import UUID

import strawberry

from domain import model, rules
from domain.rule_records import KEEP, SectionRulesChange
from domain.rule_records import Hold as HoldRecord
from schema.unset import given

SwapOutcome = strawberry.enum(model.SwapOutcome, name="SwapOutcome")


@strawberry.enum
class Weekday(StrEnum):
    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"
    SUN = "SUN"


@strawberry.enum
class WaitlistMode(Enum):  # not a StrEnum: its values carry descriptions
    AUTO_ENROLL = strawberry.enum_value(
        "AUTO_ENROLL",
        description="A freed seat goes straight to the first eligible student in line.",
    )
    OFFER = strawberry.enum_value(
        "OFFER",
        description="A freed seat is offered to the first eligible student, who must claim "
        "it before expiresAt.",
    )

    @classmethod
    def of(cls, mode: rules.WaitlistMode) -> WaitlistMode:
        return cls[mode.name]

    def domain(self) -> rules.WaitlistMode:
        return rules.WaitlistMode[self.name]


@strawberry.type
class Meeting:
    days: list[Weekday]
    start_time: str = strawberry.field(description="24-hour HH:MM, local to the semester.")
    end_time: str
    location: str | None

    @classmethod
    def of(cls, m: rules.Meeting) -> Meeting:
        return cls(
            days=[Weekday(d) for d in m.days],
            start_time=m.start_time,
            end_time=m.end_time,
            location=m.location,
        )


@strawberry.type
class Hold:
    id: UUID
    reason: str
    placed_at: datetime

    @classmethod
    def of(cls, h: HoldRecord) -> Hold:
        return cls(id=h.id, reason=h.reason, placed_at=h.placed_at)


@strawberry.input
class MeetingInput:
    days: list[Weekday]
    start_time: str
    end_time: str
    location: str | None = strawberry.UNSET

    def domain(self) -> rules.Meeting:
        return rules.Meeting(
            tuple(d.value for d in self.days),
            self.start_time,
            self.end_time,
            given(self.location) or None,
        )


@strawberry.input
class SectionRulesInput:
    """Fields left out keep their value; waitlistCapacity: null means unlimited."""

    meetings: list[MeetingInput] | None = strawberry.UNSET
    linked_section_ids: list[UUID] | None = strawberry.UNSET
    waitlist_capacity: int | None = strawberry.UNSET
    waitlist_mode: WaitlistMode | None = strawberry.UNSET
    offer_hours: int | None = strawberry.UNSET

    def domain(self) -> SectionRulesChange:
        meetings, linked, mode = (
            given(self.meetings),
            given(self.linked_section_ids),
            given(self.waitlist_mode),
        )
        return SectionRulesChange(
            meetings=None if meetings is None else tuple(m.domain() for m in meetings),
            linked_sections=None if linked is None else tuple(linked),
            # Only an explicit null clears the capacity (unlimited); left out, it stays.
            waitlist_capacity=KEEP
            if self.waitlist_capacity is strawberry.UNSET
            else self.waitlist_capacity,
            waitlist_mode=None if mode is None else mode.domain(),
            offer_hours=given(self.offer_hours),
        )


@strawberry.input
class SwapInput:
    student_id: UUID
    drop_section_id: UUID
    add_section_id: UUID
    idempotency_key: str | None = strawberry.UNSET


@strawberry.type
class SwapPayload:
    student_id: UUID
    outcome: SwapOutcome  # type: ignore[valid-type]
    reason: str | None
    waitlist_position: int | None

    @classmethod
    def of(cls, answer: model.SwapAnswer) -> SwapPayload:
        return cls(
            student_id=answer.student_id,
            outcome=answer.outcome,
            reason=answer.reason,
            waitlist_position=answer.waitlist_position,
        )
