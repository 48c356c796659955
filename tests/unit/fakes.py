"""Small in-memory implementations of the domain's ports, for pure unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from domain.errors import BadInput
from domain.model import (
    DropAnswer,
    DropOutcome,
    RegisterAnswer,
    RegisterOutcome,
    Rejection,
    SectionResult,
)
from domain.ports import RegistrationOutcomes
from domain.rules import Holder, HolderKind


@dataclass
class FakeSection:
    total: int
    enrolled: list[UUID] = field(default_factory=list)
    waitlist: list[UUID] = field(default_factory=list)


@dataclass
class FakeSeatStore:
    sections: dict[UUID, FakeSection] = field(default_factory=dict)
    unavailable: bool = False
    calls: int = 0

    async def register(
        self,
        student_id: UUID,
        section_ids: Sequence[UUID],
        request_id: str,
        op: str = "",
        deadline: int = 0,
        replaces: UUID | None = None,
    ) -> list[SectionResult]:
        self.calls += 1
        return [self._one(student_id, sid) for sid in section_ids]

    def _one(self, student: UUID, sid: UUID) -> SectionResult:
        if self.unavailable:
            return SectionResult(sid, RegisterOutcome.REJECTED, reason=Rejection.UNAVAILABLE)
        s = self.sections.get(sid)
        if s is None:
            return SectionResult(sid, RegisterOutcome.REJECTED, 0, None, "SECTION_NOT_FOUND")
        seats = s.total - len(s.enrolled)
        if student in s.enrolled:
            return SectionResult(sid, RegisterOutcome.ALREADY_ENROLLED, seats)
        if student in s.waitlist:
            rank = s.waitlist.index(student) + 1
            return SectionResult(sid, RegisterOutcome.ALREADY_WAITLISTED, seats, rank)
        if seats > 0:
            s.enrolled.append(student)
            return SectionResult(sid, RegisterOutcome.ENROLLED, seats - 1)
        s.waitlist.append(student)
        return SectionResult(sid, RegisterOutcome.WAITLISTED, 0, len(s.waitlist))

    async def drop(
        self,
        student_id: UUID,
        section_ids: Sequence[UUID],
        request_id: str,
        checked: bool,
        op: str = "",
        deadline: int = 0,
    ) -> list[tuple[DropAnswer, list[Holder]] | None]:
        return [self._drop(student_id, sid) for sid in section_ids]

    def _drop(self, student_id: UUID, section_id: UUID) -> tuple[DropAnswer, list[Holder]] | None:
        s = self.sections.get(section_id)
        if s is None:
            return None
        holders = []
        if student_id in s.enrolled:
            s.enrolled.remove(student_id)
            if s.waitlist:
                head = s.waitlist.pop(0)
                s.enrolled.append(head)
                holders.append(Holder(section_id, head, HolderKind.ENROLLED))
            outcome = DropOutcome.DROPPED
        elif student_id in s.waitlist:
            s.waitlist.remove(student_id)
            outcome = DropOutcome.LEFT_WAITLIST
        else:
            outcome = DropOutcome.NOT_REGISTERED
        answer = DropAnswer(student_id, section_id, outcome, s.total - len(s.enrolled))
        return answer, holders


@dataclass
class FakeAnswers:
    records: dict[tuple[UUID, str], tuple[str, object]] = field(default_factory=dict)
    claims: set[tuple[UUID, str]] = field(default_factory=set)

    async def begin(self, student_id: UUID, key: str, fingerprint: str) -> object | None:
        found = self.records.get((student_id, key))
        if found is not None:
            if found[0] != fingerprint:
                raise BadInput("idempotencyKey was already used with different input")
            return found[1]
        self.claims.add((student_id, key))
        return None

    async def finish(
        self, student_id: UUID, key: str, fingerprint: str, answer: RegisterAnswer | DropAnswer
    ) -> None:
        self.claims.discard((student_id, key))
        self.records[(student_id, key)] = (fingerprint, answer)

    async def abandon(self, student_id: UUID, key: str) -> None:
        self.claims.discard((student_id, key))


@dataclass
class FakeStudents:
    statuses: dict[UUID, str] = field(default_factory=dict)

    async def enrollment_status(self, student_id: UUID) -> str | None:
        return self.statuses.get(student_id)

    async def remember(self, student_id: UUID, status: str) -> None:
        self.statuses[student_id] = status

    async def created(self, student_id: UUID, status: str) -> None:
        self.statuses[student_id] = status


@dataclass
class RecordedOutcomes(RegistrationOutcomes):
    registers: list[RegisterAnswer] = field(default_factory=list)
    drops: list[DropOutcome | None] = field(default_factory=list)

    def registered(self, answer: RegisterAnswer) -> None:
        self.registers.append(answer)

    def dropped(self, outcome: DropOutcome | None) -> None:
        self.drops.append(outcome)
