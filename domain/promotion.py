"""Where a freed seat goes when registration rules are checked.

A seat freed by a drop, a capacity raise or a lapsed offer is held for the first student in
line (domain/rules.py Holder): pending a fresh check of the rules (AUTO_ENROLL: the seat is
theirs if they still pass, else they are removed with the rule they broke and the seat goes
on), or offered until it expires (OFFER: they claim it, decline it, or let it lapse). A
student promoted into a section they waited for to replace another (swap) drops the other
in the same step, and that freed seat goes down its own line. A sweeper settles what a
request left behind when it died between these steps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from domain.live import WaitlistStatus
from domain.model import SectionSetup
from domain.ports import RuleStore, SeatStore, SectionDirectory
from domain.rules import Holder, HolderKind, Holding

MAX_HANDOVERS = 1000  # a line of skips this long in one request is a bug, not a queue
# What a student's holding becomes, by where they stand in the section; absent: released.
HOLDING_OF = {
    WaitlistStatus.ENROLLED: Holding.ENROLLED,
    WaitlistStatus.WAITING: Holding.WAITING,
    WaitlistStatus.OFFERED: Holding.WAITING,
}


@dataclass(slots=True)
class Promoter:
    seats: SeatStore
    sections: SectionDirectory
    rules: RuleStore | None = None

    async def _setup(self, section_id: UUID) -> SectionSetup | None:
        (setup,) = await self.sections.setups([section_id])
        return setup if setup is not None and setup.rules is not None else None

    async def pass_on(self, holders: Iterable[Holder], request_id: str) -> None:
        """Settle every seat held for a student in line, and those it frees in turn."""
        queue = deque(holders)
        for _ in range(MAX_HANDOVERS):
            if not queue:
                return
            holder = queue.popleft()
            if holder.kind is HolderKind.ENROLLED:
                continue  # given at once: nothing to check
            queue.extend(await self._hand_over(holder, request_id))
        raise RuntimeError(f"more than {MAX_HANDOVERS} handovers in one request")

    async def _hand_over(self, holder: Holder, request_id: str) -> list[Holder]:
        setup = await self._setup(holder.section_id)
        if self.rules is None or setup is None:
            if holder.kind is HolderKind.PENDING:
                return await self._claim_unchecked(holder, request_id)
            return []
        reserve = holder.kind is HolderKind.PENDING
        broken = await self.rules.confirm_promotion(holder.student_id, setup, request_id, reserve)
        if broken is not None:
            return await self._skip(holder, setup, broken, request_id)
        if holder.kind is HolderKind.OFFERED:
            return []  # the offer stands: the student claims it
        status, more = await self.seats.resolve(
            holder.student_id, holder.section_id, "claim", "", request_id
        )
        return more + await self._settle_claim(holder.student_id, setup, status, request_id)

    async def _claim_unchecked(self, holder: Holder, request_id: str) -> list[Holder]:
        _, more = await self.seats.resolve(
            holder.student_id, holder.section_id, "claim", "", request_id
        )
        return more

    async def _skip(
        self, holder: Holder, setup: SectionSetup, broken: str, request_id: str
    ) -> list[Holder]:
        """The student would now break a rule: off the line, with the reason; seat moves on."""
        assert self.rules is not None and setup.rules is not None
        _, more = await self.seats.resolve(
            holder.student_id, holder.section_id, "skip", broken, request_id
        )
        await self.rules.forget(holder.student_id, setup.rules.semester_id, holder.section_id)
        return more

    async def _settle_claim(
        self, student_id: UUID, setup: SectionSetup, status: str, request_id: str
    ) -> list[Holder]:
        """After a claim: the reservation becomes ENROLLED (a swap's old section is dropped
        in the same step, its seat going down its own line) or is released."""
        assert self.rules is not None
        holding = HOLDING_OF.get(WaitlistStatus(status))
        swapped = await self.rules.settle(student_id, [(setup, holding)], request_id, [setup])
        if not swapped:
            return []
        drops = await self.seats.drop(student_id, swapped, request_id, checked=True)
        return [h for found in drops if found is not None for h in found[1]]

    async def claim(self, student_id: UUID, section_id: UUID, request_id: str) -> str:
        """The student takes the seat offered to them, if they still pass the rules."""
        setup = await self._setup(section_id)
        if self.rules is not None and setup is not None:
            broken = await self.rules.confirm_promotion(student_id, setup, request_id)
            if broken is not None:
                holder = Holder(section_id, student_id, HolderKind.OFFERED)
                more = await self._skip(holder, setup, broken, request_id)
                await self.pass_on(more, request_id)
                return WaitlistStatus.REMOVED
        status, more = await self.seats.resolve(student_id, section_id, "claim", "", request_id)
        if self.rules is not None and setup is not None:
            more += await self._settle_claim(student_id, setup, status, request_id)
        await self.pass_on(more, request_id)
        return status

    async def decline(self, student_id: UUID, section_id: UUID, request_id: str) -> str:
        status, more = await self.seats.resolve(student_id, section_id, "decline", "", request_id)
        await self._left_line(student_id, section_id, status)
        await self.pass_on(more, request_id)
        return status

    async def _left_line(self, student_id: UUID, section_id: UUID, status: str) -> None:
        setup = await self._setup(section_id)
        left = status in (WaitlistStatus.REMOVED, WaitlistStatus.EXPIRED)
        if left and self.rules is not None and setup is not None and setup.rules is not None:
            await self.rules.forget(student_id, setup.rules.semester_id, section_id)

    async def sweep(self, shards: Sequence[int]) -> int:
        """Settle what died half-way in these shards: lapsed offers and pending checks; with
        the reservations of requests that died. Returns how many it settled."""
        settled = 0
        for holder in await self.seats.due_holds(shards):
            if holder.kind is HolderKind.OFFERED:
                status, more = await self.seats.resolve(
                    holder.student_id, holder.section_id, "expire", "", "sweep"
                )
                await self._left_line(holder.student_id, holder.section_id, status)
                await self.pass_on(more, "sweep")
            else:
                await self.pass_on([holder], "sweep")
            settled += 1
        if self.rules is not None:
            settled += await self._sweep_reservations(shards)
        return settled

    async def _sweep_reservations(self, shards: Sequence[int]) -> int:
        assert self.rules is not None
        due = await self.rules.due_reservations(shards)
        for item in due:
            setup = await self._setup(item.section_id)
            standing = await self.seats.standing(item.student_id, item.section_id)
            if setup is not None and standing is not None:
                holding = HOLDING_OF.get(standing.status)
                await self.rules.settle(item.student_id, [(setup, holding)], item.request_id)
            await self.rules.clear_reservation(item)
        return len(due)
