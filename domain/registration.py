"""Register and drop: the hot path. No Postgres here; seats, answers and eligibility come
from the ports the composition root hands in (Redis and an in-process cache)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from uuid import UUID

from domain.errors import BadInput, Forbidden, NotEligible, NotFound, Unavailable
from domain.model import (
    ACTIVE,
    MAX_SECTIONS_PER_REQUEST,
    Actor,
    DropAnswer,
    RegisterAnswer,
    RegisterOutcome,
    Rejection,
    SectionResult,
    SectionSetup,
    SwapAnswer,
    SwapOutcome,
)
from domain.ports import (
    IdempotencyStore,
    RuleStore,
    SeatStore,
    SectionDirectory,
    StudentDirectory,
)
from domain.promotion import Promoter
from domain.rules import Attempt, Holding

MAX_IDEMPOTENCY_KEY_LENGTH = 128


def authorize(actor: Actor, student_id: UUID) -> None:
    """A student acts only for themself; staff act for anyone."""
    if not actor.is_staff and actor.subject != str(student_id):
        raise Forbidden("students may act only for themselves")


def check_sections(section_ids: Sequence[UUID]) -> None:
    if not section_ids:
        raise BadInput("sectionIds must name at least one section")
    if len(section_ids) > MAX_SECTIONS_PER_REQUEST:
        raise BadInput(f"sectionIds may name at most {MAX_SECTIONS_PER_REQUEST} sections")
    if len(set(section_ids)) != len(section_ids):
        raise BadInput("sectionIds must not repeat a section")


def check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadInput(f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")


def fingerprint(operation: str, *ids: UUID) -> str:
    text = operation + ":" + ",".join(str(i) for i in ids)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


Answer = TypeVar("Answer", RegisterAnswer, DropAnswer, SwapAnswer)


@dataclass(slots=True)
class Registrar:
    """Register, drop and swap. With a RuleStore the registration rules are checked as a
    short saga (reserve in the student's slot, take seats, settle); without one (rules
    off), one pipelined round trip of section scripts does it all."""

    seats: SeatStore
    answers: IdempotencyStore
    students: StudentDirectory
    sections: SectionDirectory | None = None
    rules: RuleStore | None = None
    promoter: Promoter | None = None

    async def register(
        self,
        actor: Actor,
        student_id: UUID,
        section_ids: Sequence[UUID],
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> RegisterAnswer:
        authorize(actor, student_id)
        check_sections(section_ids)
        check_key(idempotency_key)
        print_ = fingerprint("register", student_id, *section_ids)
        work = partial(self._register, student_id, section_ids, request_id)
        return await self._once(student_id, idempotency_key, print_, RegisterAnswer, work)

    async def drop(
        self,
        actor: Actor,
        student_id: UUID,
        section_id: UUID,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> DropAnswer:
        authorize(actor, student_id)
        check_key(idempotency_key)
        print_ = fingerprint("drop", student_id, section_id)
        work = partial(self._drop, student_id, section_id, request_id)
        return await self._once(student_id, idempotency_key, print_, DropAnswer, work)

    async def swap(
        self,
        actor: Actor,
        student_id: UUID,
        drop_section_id: UUID,
        add_section_id: UUID,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> SwapAnswer:
        authorize(actor, student_id)
        check_key(idempotency_key)
        if drop_section_id == add_section_id:
            raise BadInput("dropSectionId and addSectionId must differ")
        print_ = fingerprint("swap", student_id, drop_section_id, add_section_id)
        work = partial(self._swap, student_id, drop_section_id, add_section_id, request_id)
        return await self._once(student_id, idempotency_key, print_, SwapAnswer, work)

    async def _once(
        self,
        student_id: UUID,
        key: str | None,
        print_: str,
        kind: type[Answer],
        work: Callable[[], Awaitable[Answer]],
    ) -> Answer:
        """Run `work`, or with an idempotency key answer as the first request did."""
        if key is None:
            return await work()
        earlier = await self.answers.begin(student_id, key, print_)
        if earlier is not None:
            if not isinstance(earlier, kind):
                raise BadInput("idempotencyKey was used for another operation")
            return earlier
        try:
            answer = await work()
        except BaseException:
            await self.answers.abandon(student_id, key)
            raise
        await self.answers.finish(student_id, key, print_, answer)
        return answer

    async def _register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str
    ) -> RegisterAnswer:
        await self._check_eligible(student_id)
        if self.rules is None or self.sections is None:
            results = await self.seats.register(student_id, section_ids, request_id)
        else:
            results = await self._register_checked(student_id, section_ids, request_id)
        if all(r.reason == Rejection.UNAVAILABLE for r in results):
            raise Unavailable("seat state is being rebuilt; try again shortly")
        return RegisterAnswer(student_id, tuple(results))

    async def _register_checked(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str
    ) -> list[SectionResult]:
        """The saga: (1) rules checked and credits/time reserved in the student's slot,
        (2) seats taken by the section scripts, (3) reservations settled, refusals logged."""
        assert self.rules is not None and self.sections is not None
        setups = dict(zip(section_ids, await self.sections.setups(section_ids), strict=True))
        results: dict[UUID, SectionResult] = {
            sid: SectionResult(sid, RegisterOutcome.REJECTED, reason=Rejection.SECTION_NOT_FOUND)
            for sid, setup in setups.items()
            if setup is None
        }
        checked = [s for s in setups.values() if s is not None and s.rules is not None]
        verdicts = await self.rules.reserve(student_id, checked, section_ids, request_id)
        for verdict in verdicts:
            if verdict.reason is not None:
                results[verdict.section_id] = SectionResult(
                    verdict.section_id, RegisterOutcome.REJECTED, reason=verdict.reason
                )
        to_seat = [sid for sid in section_ids if sid not in results]
        for result in await self.seats.register(student_id, to_seat, request_id):
            results[result.section_id] = result
        outcomes = []
        for verdict in verdicts:
            outcome = results[verdict.section_id].outcome
            setup = setups_of(setups, verdict.section_id)
            if verdict.passed and verdict.held is None:  # reserved by this request
                outcomes.append((setup, HOLDING_OF_RESULT.get(outcome)))
            elif verdict.held is Holding.RESERVED and outcome is RegisterOutcome.ENROLLED:
                # a concurrent request of this student reserved it; the seat is ours
                outcomes.append((setup, Holding.ENROLLED))
        attempts = [
            Attempt(student_id, sid, str(r.reason))
            for sid, r in results.items()
            if r.outcome is RegisterOutcome.REJECTED and r.reason not in UNLOGGED
        ]
        await self.rules.settle(student_id, outcomes, request_id, checked, attempts)
        return [results[sid] for sid in section_ids]

    async def _drop(self, student_id: UUID, section_id: UUID, request_id: str) -> DropAnswer:
        if await self.students.enrollment_status(student_id) is None:
            raise NotFound(f"student {student_id} not found")
        dropping = [section_id]
        if self.rules is not None and self.sections is not None:
            (setup,) = await self.sections.setups([section_id])
            if setup is not None and setup.rules is not None:
                semester = setup.rules.semester_id
                dropping += await self.rules.release(student_id, semester, section_id)
        drops = await self.seats.drop(student_id, dropping, request_id, self.rules is not None)
        if drops[0] is None:
            raise NotFound(f"section {section_id} not found")
        if self.promoter is not None:
            holders = [h for found in drops if found is not None for h in found[1]]
            await self.promoter.pass_on(holders, request_id)
        return drops[0][0]

    async def _swap(
        self, student_id: UUID, old_id: UUID, new_id: UUID, request_id: str
    ) -> SwapAnswer:
        """Enrolled in `old`, wanting `new`: a seat in `new` means enrolled there and
        dropped from `old`; a full `new` means waiting for it while keeping `old`, and the
        promotion into `new` drops `old` in the same step (domain/promotion.py)."""
        if self.rules is None or self.sections is None or self.promoter is None:
            raise Unavailable("swap needs the registration rules, which are turned off")
        await self._check_eligible(student_id)
        old, new = await self.sections.setups([old_id, new_id])
        if new is None or new.rules is None:
            return SwapAnswer(student_id, SwapOutcome.REJECTED, Rejection.SECTION_NOT_FOUND)
        if old is None or old.rules is None or old.rules.semester_id != new.rules.semester_id:
            return SwapAnswer(student_id, SwapOutcome.REJECTED, NOT_ENROLLED)
        (verdict,) = await self.rules.reserve(student_id, [new], [new_id], request_id, old_id)
        if verdict.held is not None:
            already = (
                "ALREADY_ENROLLED" if verdict.held is Holding.ENROLLED else "ALREADY_WAITLISTED"
            )
            await self.rules.settle(student_id, [], request_id, [new])
            return SwapAnswer(student_id, SwapOutcome.REJECTED, already)
        if verdict.reason is not None:
            attempt = Attempt(student_id, new_id, verdict.reason)
            await self.rules.settle(student_id, [], request_id, [new], [attempt])
            return SwapAnswer(student_id, SwapOutcome.REJECTED, verdict.reason)
        (result,) = await self.seats.register(student_id, [new_id], request_id)
        holding = HOLDING_OF_RESULT.get(result.outcome)
        refused = [Attempt(student_id, new_id, str(result.reason))] if result.reason else []
        waiting = result.outcome is RegisterOutcome.WAITLISTED
        swap = (new_id, old_id) if waiting else None
        swapped = await self.rules.settle(
            student_id, [(new, holding)], request_id, [new], refused, swap
        )
        if waiting:
            return SwapAnswer(
                student_id,
                SwapOutcome.WAITLISTED_KEEPING_CURRENT,
                waitlist_position=result.waitlist_position,
            )
        if result.outcome is not RegisterOutcome.ENROLLED:
            return SwapAnswer(student_id, SwapOutcome.REJECTED, result.reason or result.outcome)
        drops = await self.seats.drop(student_id, swapped, request_id, checked=True)
        holders = [h for found in drops if found is not None for h in found[1]]
        await self.promoter.pass_on(holders, request_id)
        return SwapAnswer(student_id, SwapOutcome.SWAPPED)

    async def claim_seat(
        self, actor: Actor, student_id: UUID, section_id: UUID, request_id: str = ""
    ) -> str:
        authorize(actor, student_id)
        await self._check_eligible(student_id)
        if self.promoter is None:
            raise Unavailable("offers need the registration rules, which are turned off")
        return await self.promoter.claim(student_id, section_id, request_id)

    async def decline_offer(
        self, actor: Actor, student_id: UUID, section_id: UUID, request_id: str = ""
    ) -> str:
        authorize(actor, student_id)
        if self.promoter is None:
            raise Unavailable("offers need the registration rules, which are turned off")
        return await self.promoter.decline(student_id, section_id, request_id)

    async def _check_eligible(self, student_id: UUID) -> None:
        status = await self.students.enrollment_status(student_id)
        if status is None:
            raise NotFound(f"student {student_id} not found")
        if status != ACTIVE:
            raise NotEligible(f"student is {status}, not active", enrollmentStatus=status)


NOT_ENROLLED = "NOT_ENROLLED"
# Refusals not written to the attempts log: no such section, or no answer at all.
UNLOGGED = frozenset({Rejection.SECTION_NOT_FOUND, Rejection.UNAVAILABLE, None})
HOLDING_OF_RESULT = {
    RegisterOutcome.ENROLLED: Holding.ENROLLED,
    RegisterOutcome.WAITLISTED: Holding.WAITING,
}


def setups_of(setups: dict[UUID, SectionSetup | None], section_id: UUID) -> SectionSetup:
    setup = setups[section_id]
    assert setup is not None, "only known sections were checked"
    return setup
