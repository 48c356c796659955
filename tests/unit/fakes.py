"""Small in-memory implementations of the domain's ports, for pure unit tests. Each
subclasses its port, so mypy holds it to the port's signatures."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from domain.errors import BadInput
from domain.live import Standing, WaitlistStatus
from domain.model import (
    DropAnswer,
    DropOutcome,
    RegisterAnswer,
    RegisterOutcome,
    Rejection,
    SectionResult,
    SectionSetup,
    SwapAnswer,
)
from domain.ports import (
    IdempotencyStore,
    RegistrationOutcomes,
    RuleChecks,
    Seats,
    SectionDirectory,
    StudentDirectory,
)
from domain.rules import (
    Attempt,
    DueReservation,
    Holder,
    HolderKind,
    Holding,
    HoldingState,
    Leaving,
    Marked,
    Reservation,
    Settled,
    Verdict,
)
from domain.wire import EventKind

Answer = RegisterAnswer | DropAnswer | SwapAnswer


@dataclass
class FakeSection:
    total: int
    enrolled: list[UUID] = field(default_factory=list)
    waitlist: list[UUID] = field(default_factory=list)
    closed: bool = False  # the section script refuses: registration is closed
    held_for: list[UUID] = field(default_factory=list)  # seats held pending a check


@dataclass
class FakeSeatStore(Seats):
    """Seats and lines with no persistence: a drop hands the freed seat to the head of the
    line at once, or with `checked` holds it for them pending their check."""

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
        held: Collection[UUID] = (),
        checked: Mapping[UUID, str] | None = None,
    ) -> list[SectionResult]:
        self.calls += 1
        return [self._one(student_id, sid, sid in held) for sid in section_ids]

    def _one(self, student: UUID, sid: UUID, held: bool) -> SectionResult:
        if self.unavailable:
            return SectionResult(sid, RegisterOutcome.REJECTED, reason=Rejection.UNAVAILABLE)
        s = self.sections.get(sid)
        if s is None:
            return SectionResult(
                sid, RegisterOutcome.REJECTED, 0, None, Rejection.SECTION_NOT_FOUND
            )
        seats = s.total - len(s.enrolled) - len(s.held_for)
        if student in s.enrolled:
            return SectionResult(sid, RegisterOutcome.ALREADY_ENROLLED, seats)
        if student in s.waitlist:
            rank = s.waitlist.index(student) + 1
            return SectionResult(sid, RegisterOutcome.ALREADY_WAITLISTED, seats, rank)
        if held:
            return SectionResult(sid, RegisterOutcome.REJECTED, reason=Rejection.UNAVAILABLE)
        if s.closed:
            closed = Rejection.REGISTRATION_CLOSED
            return SectionResult(sid, RegisterOutcome.REJECTED, seats, reason=closed)
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
        why: str = "",
    ) -> list[tuple[DropAnswer, list[Holder]] | None]:
        return [self._drop(student_id, sid, checked) for sid in section_ids]

    def _drop(
        self, student_id: UUID, section_id: UUID, checked: bool
    ) -> tuple[DropAnswer, list[Holder]] | None:
        s = self.sections.get(section_id)
        if s is None:
            return None
        holders = []
        if student_id in s.enrolled:
            s.enrolled.remove(student_id)
            if s.waitlist:
                head = s.waitlist.pop(0)
                (s.held_for if checked else s.enrolled).append(head)
                kind = HolderKind.PENDING if checked else HolderKind.ENROLLED
                holders.append(Holder(section_id, head, kind))
            outcome = DropOutcome.DROPPED
        elif student_id in s.waitlist:
            s.waitlist.remove(student_id)
            outcome = DropOutcome.LEFT_WAITLIST
        else:
            outcome = DropOutcome.NOT_REGISTERED
        answer = DropAnswer(student_id, section_id, outcome, s.total - len(s.enrolled))
        return answer, holders

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
        s = self.sections[section_id]
        if student_id not in s.held_for:
            return WaitlistStatus.NOT_WAITLISTED, []
        s.held_for.remove(student_id)
        if action == EventKind.CLAIM:
            s.enrolled.append(student_id)
            return WaitlistStatus.ENROLLED, []
        return WaitlistStatus.REMOVED, []

    async def due_holds(self, shards: Sequence[int], limit: int = 200) -> list[Holder]:
        return []

    async def standing(self, student_id: UUID, section_id: UUID) -> Standing | None:
        s = self.sections.get(section_id)
        if s is None:
            return None
        if student_id in s.enrolled:
            return Standing(WaitlistStatus.ENROLLED)
        if student_id in s.waitlist:
            return Standing(WaitlistStatus.WAITING, s.waitlist.index(student_id) + 1)
        return Standing(WaitlistStatus.NOT_WAITLISTED)


@dataclass
class FakeHolding:
    holding: Holding
    operation: str
    swap_from: UUID | None = None


@dataclass
class FakeRuleStore(RuleChecks):
    """Holdings per (student, section) and rules that refuse the sections in `refusals`
    (section -> the rule broken). Every settle and forget is a plain write, not the real
    store's compare-and-set: enough to see where a saga leaves each holding."""

    refusals: dict[UUID, Rejection] = field(default_factory=dict)
    held: dict[tuple[UUID, UUID], FakeHolding] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    done_ops: list[str] = field(default_factory=list)

    def holding(self, student_id: UUID, section_id: UUID) -> Holding | None:
        found = self.held.get((student_id, section_id))
        return None if found is None else found.holding

    async def reserve(
        self,
        student_id: UUID,
        sections: Sequence[SectionSetup],
        all_section_ids: Sequence[UUID],
        op: str,
        swap_from: UUID | None = None,
    ) -> Reservation:
        return Reservation(1000, [self._check(student_id, s, op, swap_from) for s in sections])

    def _check(self, student: UUID, setup: SectionSetup, op: str, old: UUID | None) -> Verdict:
        sid = setup.section_id
        if sid in self.refusals:
            return Verdict(sid, reason=self.refusals[sid])
        found = self.held.get((student, sid))
        if found is not None:
            return Verdict(sid, held=found.holding)
        self.held[(student, sid)] = FakeHolding(Holding.RESERVED, op, old)
        return Verdict(sid)

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
        self.attempts += attempts
        leaving: list[Leaving] = []
        for setup, holding in outcomes:
            key = (student_id, setup.section_id)
            found = self.held.pop(key, None)
            if holding is None:
                continue
            self.held[key] = FakeHolding(holding, op)
            old = None if found is None else found.swap_from
            if old is not None and holding is Holding.ENROLLED:
                self.held[(student_id, old)] = FakeHolding(Holding.LEAVING, op)
                leaving.append(Leaving(old, op))
        return Settled({s.section_id: "OK" for s, _ in outcomes}, leaving)

    async def leave(self, student_id: UUID, section: SectionSetup, op: str) -> Marked:
        found = self.holding(student_id, section.section_id)
        self.held[(student_id, section.section_id)] = FakeHolding(Holding.LEAVING, op)
        return Marked(found, [])

    async def forget(
        self,
        student_id: UUID,
        semester_id: UUID,
        section_ids: Sequence[UUID],
        from_: str,
        op: str = "",
        indexed: Sequence[SectionSetup] = (),
    ) -> None:
        for sid in section_ids:
            self.held.pop((student_id, sid), None)

    async def done(self, student_id: UUID, op: str, indexed: Sequence[SectionSetup]) -> None:
        self.done_ops.append(op)

    async def confirm_promotion(
        self,
        student_id: UUID,
        section: SectionSetup,
        op: str,
        reserve: bool = True,
        take_over: bool = True,
    ) -> tuple[Rejection | None, int, str]:
        broken = self.refusals.get(section.section_id)
        if broken is None and reserve:
            self.held[(student_id, section.section_id)] = FakeHolding(Holding.PROMOTING, op)
        return broken, 1000, ""

    async def holdings(self, student_id: UUID, semester_id: UUID) -> list[HoldingState]:
        return [
            HoldingState(sid, h.holding, None, h.operation)
            for (student, sid), h in self.held.items()
            if student == student_id
        ]

    async def due_reservations(
        self, shards: Sequence[int], limit: int = 200
    ) -> list[DueReservation]:
        return []

    async def clear_reservation(self, due: DueReservation) -> None:
        pass


@dataclass
class FakeSections(SectionDirectory):
    by_id: dict[UUID, SectionSetup] = field(default_factory=dict)
    announced: list[UUID] = field(default_factory=list)

    async def setups(self, section_ids: Sequence[UUID]) -> list[SectionSetup | None]:
        return [self.by_id.get(sid) for sid in section_ids]

    async def announce(self, section_ids: Sequence[UUID]) -> None:
        self.announced += section_ids


@dataclass
class FakeAnswers(IdempotencyStore):
    records: dict[tuple[UUID, str], tuple[str, Answer]] = field(default_factory=dict)
    claims: set[tuple[UUID, str]] = field(default_factory=set)

    async def begin(self, student_id: UUID, key: str, fingerprint: str) -> Answer | None:
        found = self.records.get((student_id, key))
        if found is not None:
            if found[0] != fingerprint:
                raise BadInput("idempotencyKey was already used with different input")
            return found[1]
        self.claims.add((student_id, key))
        return None

    async def finish(self, student_id: UUID, key: str, fingerprint: str, answer: Answer) -> None:
        self.claims.discard((student_id, key))
        self.records[(student_id, key)] = (fingerprint, answer)

    async def abandon(self, student_id: UUID, key: str) -> None:
        self.claims.discard((student_id, key))


@dataclass
class FakeStudents(StudentDirectory):
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
