"""How register, drop and swap take and give up seats, chosen once by the composition root:
PlainSeating (rules off: one round trip of section scripts) or CheckedSeating (the rules
saga: reserve in the student's slot, take seats, settle)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, TypeGuard
from uuid import UUID

from domain.errors import NotEligible, NotFound, Unavailable
from domain.model import (
    ACTIVE,
    DropAnswer,
    RegisterOutcome,
    Rejection,
    SectionResult,
    SectionSetup,
    SwapAnswer,
    SwapOutcome,
)
from domain.ports import (
    RuleChecks,
    Seats,
    SectionDirectory,
    StudentDirectory,
)
from domain.promotion import Promoter, holders_of
from domain.rules import Attempt, Holder, Holding, Leaving, Verdict

log = logging.getLogger(__name__)


async def follow_up(step: Awaitable[object], what: str) -> None:
    """A step after the answer is known (settling reservations, handing freed seats on):
    its failure does not change the answer, and what it leaves behind has a deadline after
    which the sweeper settles it (domain/promotion.py), so it is logged, not raised."""
    try:
        await step
    except Exception as exc:
        log.warning("%s left to the sweeper: %s", what, exc)


class Seating(Protocol):
    """How register, drop and swap take and give up seats: with the registration rules
    checked (CheckedSeating) or not (PlainSeating). The composition root chooses one."""

    async def register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str, op: str
    ) -> list[SectionResult]: ...

    async def drop(
        self, student_id: UUID, section_id: UUID, request_id: str, op: str
    ) -> DropAnswer | None:
        """The answer, the freed seat handed on; None when the section is unknown."""

    async def swap(
        self, student_id: UUID, old_id: UUID, new_id: UUID, request_id: str, op: str
    ) -> SwapAnswer: ...


@dataclass(slots=True)
class PlainSeating:
    """Rules off: one pipelined round trip of section scripts does it all, and a freed seat
    goes to the next in line at once (nothing to hand on)."""

    seats: Seats

    async def register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str, op: str
    ) -> list[SectionResult]:
        return await self.seats.register(student_id, section_ids, request_id, op)

    async def drop(
        self, student_id: UUID, section_id: UUID, request_id: str, op: str
    ) -> DropAnswer | None:
        (found,) = await self.seats.drop(student_id, [section_id], request_id, False, op)
        return None if found is None else found[0]

    async def swap(
        self, student_id: UUID, old_id: UUID, new_id: UUID, request_id: str, op: str
    ) -> SwapAnswer:
        raise Unavailable("swap needs the registration rules, which are turned off")


def fingerprint(setup: SectionSetup) -> str:
    assert setup.rules is not None, "rules are checked only for sections that carry them"
    return setup.rules.fingerprint()


@dataclass(slots=True)
class CheckedSeating:
    """Rules on: checked as a short saga (reserve in the student's slot, take seats,
    settle). Each step is a compare-and-set on the holdings' state machine
    (docs/holdings.md) and runs once per operation."""

    seats: Seats
    students: StudentDirectory
    sections: SectionDirectory
    rules: RuleChecks
    promoter: Promoter

    async def register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str, op: str
    ) -> list[SectionResult]:
        """The saga: (1) rules checked and credits/time reserved in the student's slot (R),
        (2) seats taken by the section scripts, before the reservation's deadline, (3) each
        reservation settled from R to where the student now stands, refusals logged."""
        setups = dict(zip(section_ids, await self.sections.setups(section_ids), strict=True))
        results: dict[UUID, SectionResult] = {
            sid: SectionResult(sid, RegisterOutcome.REJECTED, reason=Rejection.SECTION_NOT_FOUND)
            for sid, setup in setups.items()
            if setup is None
        }
        checked = [s for s in setups.values() if s is not None and s.rules is not None]
        reservation = await self.rules.reserve(student_id, checked, section_ids, op)
        for verdict in reservation.verdicts:
            if verdict.reason is not None:
                results[verdict.section_id] = SectionResult(
                    verdict.section_id, RegisterOutcome.REJECTED, reason=verdict.reason
                )
        to_seat = [sid for sid in section_ids if sid not in results]
        held = {v.section_id for v in reservation.verdicts if v.held is not None}
        fingerprints = {s.section_id: fingerprint(s) for s in checked}
        taken = await self.seats.register(
            student_id,
            to_seat,
            request_id,
            op,
            reservation.deadline,
            held=held,
            checked=fingerprints,
        )
        again = {v.section_id for v in reservation.verdicts if v.again}
        for result in taken:
            if result.section_id in again:
                result = own_placing(result)
            results[result.section_id] = result
        outcomes = [
            (setups_of(setups, v.section_id), holding_of(results[v.section_id]))
            for v in reservation.verdicts
            if v.passed and v.held is None
        ]
        attempts = [
            Attempt(student_id, sid, r.reason)
            for sid, r in results.items()
            if r.outcome is RegisterOutcome.REJECTED and logged(r.reason)
        ]
        settle = self.rules.settle(
            student_id,
            outcomes,
            op,
            indexed=checked,
            attempts=attempts,
            request_id=request_id,
            generation=reservation.generation,
        )
        await follow_up(settle, f"settling the reservations of {student_id}")
        return [results[sid] for sid in section_ids]

    async def drop(
        self, student_id: UUID, section_id: UUID, request_id: str, op: str
    ) -> DropAnswer | None:
        """The holding becomes LEAVING first (with what depends on it), then the seats go,
        then the holdings are forgotten: a failure in between leaves LEAVING for the sweeper
        to finish, never a seat that counts nothing (docs/holdings.md)."""
        (setup,) = await self.sections.setups([section_id])
        if setup is None or setup.rules is None:
            drops = await self.seats.drop(student_id, [section_id], request_id, True, op)
            holders: list[Holder] = []
        else:
            drops, holders = await self._leave(student_id, setup, request_id, op)
        if drops[0] is None:
            return None
        await follow_up(self.promoter.pass_on(holders, request_id), "handing seats on")
        return drops[0][0]

    async def _leave(
        self, student_id: UUID, setup: SectionSetup, request_id: str, op: str
    ) -> tuple[list[tuple[DropAnswer, list[Holder]] | None], list[Holder]]:
        assert setup.rules is not None
        marked = await self.rules.leave(student_id, setup, op)
        if marked.unavailable:
            raise Unavailable("student records are being reloaded; try again shortly")
        if marked.busy:
            raise Unavailable("a registration of this section is under way; try again shortly")
        leaving = [Leaving(setup.section_id, marked.operation or op)]
        leaving += [Leaving(sid, op, Rejection.LINK_REQUIRED) for sid in marked.dependants]
        drops = await self.promoter.give_up(
            student_id, setup.rules.semester_id, leaving, request_id, op, [setup]
        )
        return drops, [h for found in drops if found is not None for h in found[1]]

    async def swap(
        self, student_id: UUID, old_id: UUID, new_id: UUID, request_id: str, op: str
    ) -> SwapAnswer:
        """Enrolled in `old`, wanting `new`: a seat in `new` means enrolled there and
        `old` LEAVING, then dropped; a full `new` means waiting for it while keeping `old`,
        and the promotion into `new` drops `old` the same way (domain/promotion.py)."""
        await require_eligible(self.students, student_id)
        old, new = await self.sections.setups([old_id, new_id])
        if new is None or new.rules is None:
            return SwapAnswer(student_id, SwapOutcome.REJECTED, Rejection.SECTION_NOT_FOUND)
        if old is None or old.rules is None or old.rules.semester_id != new.rules.semester_id:
            return SwapAnswer(student_id, SwapOutcome.REJECTED, Rejection.NOT_ENROLLED)
        reservation = await self.rules.reserve(student_id, [new], [new_id], op, old_id)
        (verdict,) = reservation.verdicts
        if not verdict.passed or verdict.held is not None:
            return await self._swap_refused(student_id, new, verdict, op, request_id)
        (result,) = await self.seats.register(
            student_id,
            [new_id],
            request_id,
            op,
            reservation.deadline,
            replaces=old_id,
            checked={new_id: fingerprint(new)},
        )
        holding = holding_of(result)  # what the holding settles to: where they stand now
        answer = HOLDING_OF_RESULT.get(result.outcome)  # what the client is told
        attempts = [Attempt(student_id, new_id, result.reason)] if logged(result.reason) else []
        if answer is Holding.ENROLLED:
            # SWAPPED only once `old` is dropped: a failure here answers "try again", and
            # the retry (the same operation) finds `old` still LEAVING and drops it.
            semester = new.rules.semester_id
            settled = await self.rules.settle(
                student_id, [(new, holding)], op, generation=reservation.generation
            )
            # A retry finds what the first run left LEAVING; a first run is told by move.lua,
            # unless a drop of `old` marked it LEAVING first: then its seat is dropped here
            # too (under the drop's operation: once), before SWAPPED is said.
            leaving = settled.leaving or await self.promoter.leaving(
                student_id, semester, op, old_id
            )
            drops = await self.promoter.give_up(
                student_id, semester, leaving, request_id, op, [new]
            )
            await follow_up(self.promoter.pass_on(holders_of(drops), request_id), "handing on")
            return SwapAnswer(student_id, SwapOutcome.SWAPPED)
        settle = self.rules.settle(
            student_id,
            [(new, holding)],
            op,
            indexed=[new],
            attempts=attempts,
            request_id=request_id,
            generation=reservation.generation,
        )
        await follow_up(settle, f"settling the swap of {student_id}")
        if answer is Holding.WAITING:
            return SwapAnswer(
                student_id,
                SwapOutcome.WAITLISTED_KEEPING_CURRENT,
                waitlist_position=result.waitlist_position,
            )
        return SwapAnswer(student_id, SwapOutcome.REJECTED, result.reason)

    async def _swap_refused(
        self, student_id: UUID, new: SectionSetup, verdict: Verdict, op: str, request_id: str
    ) -> SwapAnswer:
        """Nothing reserved now: log a rule's refusal and answer why. The index entry stays
        for the sweeper, which clears it once it finds nothing of this operation in flight:
        an earlier run of it (the client's retry) may have left the old section LEAVING."""
        if verdict.reason is Rejection.UNAVAILABLE:
            raise Unavailable("this section is being changed; try again shortly")
        if verdict.held is not None:
            already = (
                Rejection.ALREADY_ENROLLED
                if verdict.held is Holding.ENROLLED
                else Rejection.ALREADY_WAITLISTED
            )
            return SwapAnswer(student_id, SwapOutcome.REJECTED, already)
        reason = verdict.reason
        assert reason is not None, "a verdict neither passed nor held names its reason"
        attempt = Attempt(student_id, new.section_id, reason)
        await self.rules.settle(student_id, [], op, attempts=[attempt], request_id=request_id)
        return SwapAnswer(student_id, SwapOutcome.REJECTED, reason)


async def require_eligible(students: StudentDirectory, student_id: UUID) -> None:
    status = await students.enrollment_status(student_id)
    if status is None:
        raise NotFound(f"student {student_id} not found")
    if status != ACTIVE:
        raise NotEligible(f"student is {status}, not active", enrollmentStatus=status)


# Refusals not written to the attempts log: no such section, or no answer at all.
UNLOGGED = frozenset({Rejection.SECTION_NOT_FOUND, Rejection.UNAVAILABLE})


def logged(reason: Rejection | None) -> TypeGuard[Rejection]:
    """Whether a refusal goes to the attempts log."""
    return reason is not None and reason not in UNLOGGED


# A reservation settles to where the student stands in the section now, whichever request
# put them there.
HOLDING_OF_RESULT = {
    RegisterOutcome.ENROLLED: Holding.ENROLLED,
    RegisterOutcome.ALREADY_ENROLLED: Holding.ENROLLED,
    RegisterOutcome.WAITLISTED: Holding.WAITING,
    RegisterOutcome.ALREADY_WAITLISTED: Holding.WAITING,
}


OWN_PLACING = {
    RegisterOutcome.ALREADY_ENROLLED: RegisterOutcome.ENROLLED,
    RegisterOutcome.ALREADY_WAITLISTED: RegisterOutcome.WAITLISTED,
}


def own_placing(result: SectionResult) -> SectionResult:
    """A retry's section step found the student placed by its own first run (whose
    remembered answer went with a lost node): the first answer was ENROLLED or WAITLISTED."""
    placed = OWN_PLACING.get(result.outcome)
    return result if placed is None else replace(result, outcome=placed)


def holding_of(result: SectionResult) -> Holding | None:
    """What a reservation settles to: where the student stands in the section now."""
    return HOLDING_OF_RESULT.get(result.now or result.outcome)


def setups_of(setups: dict[UUID, SectionSetup | None], section_id: UUID) -> SectionSetup:
    setup = setups[section_id]
    assert setup is not None, "only known sections were checked"
    return setup
