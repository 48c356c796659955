"""Where a freed seat goes: at once to the next in line when the rules are off
(PlainPromoter); with them on (Promoter), as follows.

A seat freed by a drop, a capacity raise or a lapsed offer is held for the first student in
line (domain/rules.py Holder): pending a fresh check of the rules (AUTO_ENROLL: the seat is
theirs if they still pass, else they are removed with the rule they broke and the seat goes
on), or offered until it expires (OFFER: they claim it, decline it, or let it lapse). A
student promoted into a section they waited for to replace another (swap) gives the other
up the way a drop does: LEAVING, its seat dropped, then forgotten; that freed seat goes down
its own line. Every step moves a holding only from the state it expects
(docs/holdings.md); a sweeper settles what a request left behind when it died between
steps, after the step's deadline, acting for the operation that died.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol
from uuid import UUID, uuid4

from domain.errors import Unavailable
from domain.live import WaitlistStatus
from domain.model import DropAnswer, SectionSetup
from domain.ports import RuleChecks, Seats, SectionDirectory
from domain.rules import DueReservation, Holder, HolderKind, Holding, Leaving, Rejection
from domain.wire import EventKind

MAX_HANDOVERS = 1000  # a line of skips this long in one request is a bug, not a queue
# What a student's holding becomes, by where they stand in the section; absent: forgotten.
HOLDING_OF = {
    WaitlistStatus.ENROLLED: Holding.ENROLLED,
    WaitlistStatus.WAITING: Holding.WAITING,
    WaitlistStatus.OFFERED: Holding.WAITING,
}
# What confirm answers when the seat cannot be handed over now: the student's rule state is
# not loaded, or a drop of theirs is under way. The seat stays held; the sweeper (or the
# drop) settles it.
NOT_NOW = Rejection.UNAVAILABLE

Drops = list[tuple[DropAnswer, list[Holder]] | None]


def new_operation() -> str:
    return uuid4().hex


def holders_of(drops: Drops) -> list[Holder]:
    return [h for found in drops if found is not None for h in found[1]]


class Promotion(Protocol):
    """Where a freed seat goes: to the next in line at once (PlainPromoter, rules off), or
    held for the next student's check of the rules (Promoter). The composition root
    chooses one."""

    @property
    def checked(self) -> bool:
        """Whether a freed seat is held pending the next student's check (Seats)."""

    async def pass_on(self, holders: Iterable[Holder], request_id: str) -> None:
        """Settle every seat held for a student in line, and those it frees in turn."""

    async def claim(self, student_id: UUID, section_id: UUID, request_id: str) -> WaitlistStatus:
        """The student takes the seat offered to them."""

    async def decline(
        self, student_id: UUID, section_id: UUID, request_id: str
    ) -> WaitlistStatus: ...

    async def sweep(self, shards: Sequence[int]) -> int:
        """Settle what died half-way in these shards; how many it settled."""


async def hand_on(
    holders: Iterable[Holder], hand_over: Callable[[Holder], Awaitable[list[Holder]]]
) -> None:
    """Hand over every seat held for a student in line, and those it frees in turn."""
    queue = deque(holders)
    for _ in range(MAX_HANDOVERS):
        if not queue:
            return
        holder = queue.popleft()
        if holder.kind is HolderKind.ENROLLED:
            continue  # given at once: nothing to check
        queue.extend(await hand_over(holder))
    if not queue:  # exactly MAX_HANDOVERS (a capacity raise of 1000 seats) is no bug
        return
    raise RuntimeError(f"more than {MAX_HANDOVERS} handovers in one request")


async def take_pending(seats: Seats, holder: Holder, request_id: str) -> list[Holder]:
    """A seat held pending a check with no rules to check: claimed for the student. An
    offer stands: the student claims it."""
    if holder.kind is not HolderKind.PENDING:
        return []
    _, more = await seats.resolve(
        holder.student_id, holder.section_id, EventKind.CLAIM, "", request_id
    )
    return more


@dataclass(slots=True)
class PlainPromoter:
    """Rules off: nothing to check again, so a freed seat goes to the next in line at once."""

    seats: Seats
    checked: ClassVar[bool] = False

    async def pass_on(self, holders: Iterable[Holder], request_id: str) -> None:
        await hand_on(holders, lambda holder: take_pending(self.seats, holder, request_id))

    async def claim(self, student_id: UUID, section_id: UUID, request_id: str) -> WaitlistStatus:
        return await self._resolve(student_id, section_id, EventKind.CLAIM, request_id)

    async def decline(self, student_id: UUID, section_id: UUID, request_id: str) -> WaitlistStatus:
        return await self._resolve(student_id, section_id, EventKind.DECLINE, request_id)

    async def sweep(self, shards: Sequence[int]) -> int:
        """Settle lapsed offers and pending checks whose request died."""
        due = await self.seats.due_holds(shards)
        for holder in due:
            if holder.kind is HolderKind.OFFERED:
                await self._resolve(holder.student_id, holder.section_id, EventKind.EXPIRE, "sweep")
            else:
                await self.pass_on([holder], "sweep")
        return len(due)

    async def _resolve(
        self, student_id: UUID, section_id: UUID, action: EventKind, request_id: str
    ) -> WaitlistStatus:
        status, more = await self.seats.resolve(
            student_id, section_id, action, "", request_id, new_operation()
        )
        await self.pass_on(more, request_id)
        return status


@dataclass(slots=True)
class Promoter:
    """Rules on: a freed seat is held for the next in line until their rules are checked
    again; in a section without rules it goes as with PlainPromoter."""

    seats: Seats
    sections: SectionDirectory
    rules: RuleChecks
    checked: ClassVar[bool] = True

    async def _setup(self, section_id: UUID) -> SectionSetup | None:
        (setup,) = await self.sections.setups([section_id])
        return setup if setup is not None and setup.rules is not None else None

    async def pass_on(self, holders: Iterable[Holder], request_id: str) -> None:
        await hand_on(holders, lambda holder: self._hand_over(holder, request_id))

    async def _hand_over(self, holder: Holder, request_id: str) -> list[Holder]:
        setup = await self._setup(holder.section_id)
        if setup is None:
            return await take_pending(self.seats, holder, request_id)
        op = new_operation()
        reserve = holder.kind is HolderKind.PENDING
        broken, deadline, generation = await self.rules.confirm_promotion(
            holder.student_id, setup, op, reserve
        )
        if broken is not None and reserve:
            await self.rules.done(holder.student_id, op, [setup])  # nothing was reserved
        if broken is NOT_NOW:
            return []
        if broken is not None:
            _, more = await self._skip(holder, setup, broken, request_id)
            return more
        if holder.kind is HolderKind.OFFERED:
            return []  # the offer stands: the student claims it
        status, more = await self.seats.resolve(
            holder.student_id, holder.section_id, EventKind.CLAIM, "", request_id, op, deadline
        )
        settled = await self._settle_claim(
            holder.student_id, setup, status, request_id, op, generation
        )
        return more + settled

    async def _skip(
        self, holder: Holder, setup: SectionSetup, broken: Rejection, request_id: str
    ) -> tuple[WaitlistStatus, list[Holder]]:
        """The student would now break a rule: off the line, with the reason, then the
        holding forgotten; the seat moves on. A student with no seat held for them (a claim
        with nothing offered) stays in line, and so does their holding."""
        assert setup.rules is not None
        status, more = await self.seats.resolve(
            holder.student_id,
            holder.section_id,
            EventKind.SKIP,
            broken,
            request_id,
            new_operation(),
        )
        if status in (WaitlistStatus.REMOVED, WaitlistStatus.NOT_WAITLISTED):
            await self.rules.forget(
                holder.student_id, setup.rules.semester_id, [holder.section_id], from_="W"
            )
        return status, more

    async def _settle_claim(
        self,
        student_id: UUID,
        setup: SectionSetup,
        status: WaitlistStatus,
        request_id: str,
        op: str,
        generation: str,
    ) -> list[Holder]:
        """After a claim: the promotion (P) becomes ENROLLED, a swap's old section LEAVING
        and then dropped (its seat going down its own line), or P goes back to waiting or is
        forgotten, by what the section answered."""
        assert setup.rules is not None
        holding = HOLDING_OF.get(status)
        # P, or none if the student's slot was reloaded under it (RuleChecks.settle)
        settled = await self.rules.settle(
            student_id, [(setup, holding)], op, from_="P-", generation=generation
        )
        drops = await self.give_up(
            student_id, setup.rules.semester_id, settled.leaving, request_id, op, [setup]
        )
        return holders_of(drops)

    async def give_up(
        self,
        student_id: UUID,
        semester_id: UUID,
        leaving: Sequence[Leaving],
        request_id: str,
        op: str = "",
        indexed: Sequence[SectionSetup] = (),
    ) -> Drops:
        """Holdings in LEAVING: their seats or places go first (each under its operation),
        then the holdings are forgotten and the saga's index entry cleared. A failure before
        the end leaves LEAVING for the sweeper."""
        drops: Drops = []
        for (owner, why), group in itertools.groupby(leaving, lambda x: (x.operation, x.why)):
            ids = [x.section_id for x in group]
            drops += await self.seats.drop(student_id, ids, request_id, True, owner, why=why)
            if owner != op:  # LEAVING under another drop met on the way (marked first)
                await self.rules.forget(student_id, semester_id, ids, "D", owner)
        gone = [x.section_id for x in leaving if x.operation == op]
        await self.rules.forget(student_id, semester_id, gone, "D", op, indexed)
        return drops

    async def leaving(
        self, student_id: UUID, semester_id: UUID, op: str, section_id: UUID
    ) -> list[Leaving]:
        """The holdings this operation left LEAVING and has not given up yet, and
        `section_id` if another operation (a drop of it) left it LEAVING: each is given up
        under its own operation, so its seat goes once whoever gets there first."""
        return [
            Leaving(state.section_id, state.operation)
            for state in await self.rules.holdings(student_id, semester_id)
            if state.holding is Holding.LEAVING
            and (state.operation == op or state.section_id == section_id)
        ]

    async def claim(self, student_id: UUID, section_id: UUID, request_id: str) -> WaitlistStatus:
        """The student takes the seat offered to them, if they still pass the rules."""
        setup = await self._setup(section_id)
        op, deadline, generation = new_operation(), 0, ""
        if setup is not None:
            broken, deadline, generation = await self.rules.confirm_promotion(
                student_id, setup, op, take_over=False
            )
            if broken is NOT_NOW:
                await self.rules.done(student_id, op, [setup])
                raise Unavailable("this seat is being settled; try again shortly")
            if broken is not None:
                await self.rules.done(student_id, op, [setup])
                holder = Holder(section_id, student_id, HolderKind.OFFERED)
                status, more = await self._skip(holder, setup, broken, request_id)
                await self.pass_on(more, request_id)
                return status
        status, more = await self.seats.resolve(
            student_id, section_id, EventKind.CLAIM, "", request_id, op, deadline
        )
        if setup is not None:
            more += await self._settle_claim(student_id, setup, status, request_id, op, generation)
        await self.pass_on(more, request_id)
        return status

    async def decline(self, student_id: UUID, section_id: UUID, request_id: str) -> WaitlistStatus:
        return await self._leave_line(student_id, section_id, EventKind.DECLINE, request_id)

    async def _leave_line(
        self, student_id: UUID, section_id: UUID, action: EventKind, request_id: str
    ) -> WaitlistStatus:
        """Decline or expire: off the line, the holding forgotten, the seat handed on."""
        status, more = await self.seats.resolve(
            student_id, section_id, action, "", request_id, new_operation()
        )
        await self._left_line(student_id, section_id, status)
        await self.pass_on(more, request_id)
        return status

    async def _left_line(self, student_id: UUID, section_id: UUID, status: WaitlistStatus) -> None:
        setup = await self._setup(section_id)
        left = status in (WaitlistStatus.REMOVED, WaitlistStatus.EXPIRED)
        if left and setup is not None and setup.rules is not None:
            await self.rules.forget(student_id, setup.rules.semester_id, [section_id], "WP")

    async def sweep(self, shards: Sequence[int]) -> int:
        """Settle what died half-way in these shards: lapsed offers, pending checks and the
        saga steps of requests that died. Returns how many it settled."""
        due = await self.seats.due_holds(shards)
        for holder in due:
            if holder.kind is HolderKind.OFFERED:
                await self._leave_line(
                    holder.student_id, holder.section_id, EventKind.EXPIRE, "sweep"
                )
            else:
                await self.pass_on([holder], "sweep")
        return len(due) + await self._sweep_reservations(shards)

    async def _sweep_reservations(self, shards: Sequence[int]) -> int:
        due = await self.rules.due_reservations(shards)
        entries: dict[str, list[DueReservation]] = {}
        for item in due:
            entries.setdefault(item.index_entry, []).append(item)
        for items in entries.values():
            if await self._finish(items):
                await self.rules.clear_reservation(items[0])
        return len(due)

    async def _finish(self, items: Sequence[DueReservation]) -> bool:
        """Finish one dead saga, acting for its operation: each of its reservations or
        promotions (R, P) settles to where the student stands in the section now; each
        holding it left LEAVING is dropped and forgotten. False when not due yet by Redis's
        clock (the index entry stays for the next sweep)."""
        first = items[0]
        student, op, named = first.student_id, first.operation, {i.section_id for i in items}
        finished = True
        for semester in {i.semester_id for i in items}:
            leaving: list[Leaving] = []
            for state in await self.rules.holdings(student, semester):
                if state.operation != op:
                    continue  # another operation's: its own index entry covers it
                if state.holding is Holding.LEAVING:
                    leaving.append(Leaving(state.section_id, op))
                elif state.holding in (Holding.RESERVED, Holding.PROMOTING):
                    if state.section_id not in named:
                        continue
                    setup = await self._setup(state.section_id)
                    if setup is None:
                        continue
                    standing = await self.seats.standing(student, state.section_id)
                    holding = None if standing is None else HOLDING_OF.get(standing.status)
                    moved = await self.rules.settle(
                        student, [(setup, holding)], op, from_=state.holding.value, due=True
                    )
                    finished &= "NOTDUE" not in moved.words.values()
                    leaving += moved.leaving
            if leaving:
                drops = await self.give_up(student, semester, leaving, "sweep", op)
                await self.pass_on(holders_of(drops), "sweep")
        return finished
