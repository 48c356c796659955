"""RedisRuleStore: the RuleStore port, in each student's own slot (reserve.lua, confirm.lua,
move.lua, mark.lua, load_student.lua; the holdings' state machine is docs/holdings.md), and
the JSON shape of a section's rule data those scripts read."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.changes import ChangeKind
from domain.model import SectionSetup
from domain.rules import (
    Attempt,
    DueReservation,
    HeldSection,
    Holding,
    HoldingState,
    Leaving,
    Marked,
    Meeting,
    Rejection,
    Reservation,
    SectionRules,
    Settled,
    StudentRules,
    Verdict,
    WaitlistMode,
)
from domain.wire import HoldingField as H
from domain.wire import SectionField as S
from domain.wire import StreamField as F
from domain.wire import StudentFact
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys, shard_of
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import MEMO_MS, Batch, Call, Scripts

log = logging.getLogger(__name__)

RESERVATION_MS = 30_000
LEAVE_SWEEP_MS = 2_000
MIRROR_CHUNK = 1_000  # students per pipelined round trip (mirror_many)
REFRESH_CHUNK = 500
IN_FLIGHT = (Holding.RESERVED, Holding.PROMOTING, Holding.LEAVING)


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


def _holding_fields(rules: SectionRules) -> dict[str, object]:
    """What a holding copies of its section's rules (the same names in both formats)."""
    return {
        H.COURSE: str(rules.course_id),
        H.CREDITS: rules.credits,
        H.MEETINGS: [list(i) for i in rules.intervals()],
        H.LINKED: [str(s) for s in rules.linked_sections],
    }


def rules_json(setup: SectionSetup) -> str:
    """The section's compact rule JSON (domain/wire.py SectionField): what reserve.lua reads,
    plus what rebuilds the domain's SectionRules from it. Stored in the section's meta hash
    and cached per process, so requests pass it along without encoding it again."""
    rules = setup.rules
    assert rules is not None, "rules are checked only for sections that carry them"
    body = {
        S.ID: str(setup.section_id),
        S.OPENS: epoch_ms(setup.opens_at),
        S.CLOSES: epoch_ms(setup.closes_at),
        S.PREREQUISITES: [str(c) for c in rules.prerequisites],
        **_holding_fields(rules),
        S.SEMESTER: str(rules.semester_id),
        S.MEETING_TIMES: [
            [list(m.days), m.start_time, m.end_time, m.location] for m in rules.meetings
        ],
        S.WAITLIST_CAPACITY: rules.waitlist_capacity,
        S.WAITLIST_MODE: rules.waitlist_mode.value,
        S.OFFER_HOURS: rules.offer_hours,
    }
    return json.dumps(body, separators=(",", ":"))


def decode_rules(text: str) -> SectionRules:
    body = json.loads(text)
    return SectionRules(
        course_id=UUID(body[S.COURSE]),
        semester_id=UUID(body[S.SEMESTER]),
        credits=float(body[S.CREDITS]),
        meetings=tuple(Meeting(tuple(d), s, e, loc) for d, s, e, loc in body[S.MEETING_TIMES]),
        linked_sections=tuple(UUID(x) for x in body[S.LINKED]),
        prerequisites=tuple(UUID(x) for x in body[S.PREREQUISITES]),
        waitlist_capacity=body[S.WAITLIST_CAPACITY],
        waitlist_mode=WaitlistMode(body[S.WAITLIST_MODE]),
        offer_hours=int(body[S.OFFER_HOURS]),
    )


def _fields(rules: SectionRules, holding: Holding, swap_from: UUID | None = None) -> dict:
    entry = {H.STATE: holding.value, **_holding_fields(rules)}
    if swap_from is not None:
        entry[H.REPLACES] = str(swap_from)
    return entry


def _entry(rules: SectionRules, holding: Holding, swap_from: UUID | None = None) -> str:
    return json.dumps(_fields(rules, holding, swap_from), separators=(",", ":"))


class Encoded:
    """Each section's JSON for the student scripts, encoded once per SectionSetup object
    (the section directory hands out the same one while it is cached), not per request."""

    LIMIT = 20_000

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[SectionSetup, str, dict[Holding, str]]] = {}

    def _get(self, setup: SectionSetup) -> tuple[SectionSetup, str, dict[Holding, str]]:
        found = self._by_id.get(id(setup))
        if found is None or found[0] is not setup:
            if len(self._by_id) > self.LIMIT:
                self._by_id.clear()
            found = (setup, rules_json(setup), {})
            self._by_id[id(setup)] = found
        return found

    def rules(self, setup: SectionSetup) -> str:
        return self._get(setup)[1]

    def entry(self, setup: SectionSetup, holding: Holding) -> str:
        entries = self._get(setup)[2]
        if holding not in entries:
            assert setup.rules is not None
            entries[holding] = _entry(setup.rules, holding)
        return entries[holding]


def _rejection(word: str) -> Rejection:
    """A refusal of reserve.lua or confirm.lua. BUSY (a reservation, promotion or drop of
    the section in flight) means to the caller what UNAVAILABLE does: try again."""
    return Rejection.UNAVAILABLE if word == "BUSY" else Rejection(word)


def _verdict(section_id: UUID, word: str) -> Verdict:
    if word in ("OK", "AGAIN"):
        return Verdict(section_id, again=word == "AGAIN")
    if word.startswith("HELD:"):
        return Verdict(section_id, held=Holding(word.removeprefix("HELD:")))
    return Verdict(section_id, reason=_rejection(word))


def _semester(setup: SectionSetup) -> UUID:
    assert setup.rules is not None, "rules are checked only for sections that carry them"
    return setup.rules.semester_id


def _leaving(words: Sequence[str], op: str) -> list[Leaving]:
    """move.lua's ids of the holdings a swap left LEAVING."""
    return [Leaving(UUID(word), op) for word in words]


@unavailable_when_down
class RedisRuleStore:
    def __init__(
        self,
        redis: RedisClient,
        scripts: Scripts,
        keys: Keys,
        max_credits: float,
        reservation_ms: int = RESERVATION_MS,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.max_credits = max_credits
        self.encoded = Encoded()
        self.reservation_ms = reservation_ms
        # Swept a while after their deadline: a slow request settles its own first, and the
        # section steps of a saga refuse after the deadline (lib/once.lua), so what the
        # sweeper reads of the sections then is final.
        self.sweep_after_ms = 2 * reservation_ms
        self.memo_ms = max(MEMO_MS, 4 * reservation_ms)
        # A drop needs no deadline: drop.lua runs once per operation, so the sweeper may
        # finish a dead one soon (and the seat held for it goes on down its line).
        self.leave_sweep_ms = min(LEAVE_SWEEP_MS, self.sweep_after_ms)

    def _index(self, student_id: UUID) -> str:
        return self.keys.reservations(shard_of(student_id, self.keys.shards))

    def _member(self, student_id: UUID, setups: Sequence[SectionSetup], op: str) -> str:
        """One index entry per saga, naming its sections: one command to write and one to
        clear, and concurrent sagas never clear each other's."""
        sections = ",".join(f"{_semester(s)}:{s.section_id}" for s in setups)
        return f"{student_id}|{op}|{sections}"

    def _indexed(
        self,
        batch: Batch,
        student_id: UUID,
        setups: Sequence[SectionSetup],
        op: str,
        after_ms: int | None = None,
    ) -> None:
        due = now_ms() + (self.sweep_after_ms if after_ms is None else after_ms)
        batch.zadd(self._index(student_id), {self._member(student_id, setups, op): due})

    async def reserve(
        self,
        student_id: UUID,
        sections: Sequence[SectionSetup],
        all_section_ids: Sequence[UUID],
        op: str,
        swap_from: UUID | None = None,
    ) -> Reservation:
        """One reserve.lua per semester, the reservations indexed for the sweeper first,
        in one pipelined round trip."""
        if not sections:
            return Reservation(0, [])
        by_semester: dict[UUID, list[SectionSetup]] = defaultdict(list)
        for setup in sections:
            by_semester[_semester(setup)].append(setup)
        batch = Batch(self.scripts)
        self._indexed(batch, student_id, sections, op)
        request = ",".join(str(s) for s in all_section_ids)
        for semester_id, group in by_semester.items():
            batch.call(
                Call(
                    self.scripts.reserve,
                    [
                        self.keys.student(student_id),
                        self.keys.completed(student_id),
                        self.keys.holdings(student_id, semester_id),
                    ],
                    [
                        str(semester_id),
                        self.reservation_ms,
                        self.max_credits,
                        str(swap_from) if swap_from else "",
                        request,
                        op,
                        *(self.encoded.rules(s) for s in group),
                    ],
                )
            )
        replies = await batch.execute()
        verdicts: dict[UUID, Verdict] = {}
        deadline, generation = 0, ""
        for group, (until, gen, *words) in zip(by_semester.values(), replies[1:], strict=True):
            deadline, generation = max(deadline, int(until)), str(gen)
            for setup, word in zip(group, words, strict=True):
                verdicts[setup.section_id] = _verdict(setup.section_id, word)
        return Reservation(deadline, [verdicts[s.section_id] for s in sections], generation)

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
        """move.lua per semester, the index entry cleared and the refused attempts logged
        (once per operation, append.lua), in one round trip."""
        by_semester: dict[UUID, list[str]] = defaultdict(list)
        order: dict[UUID, list[UUID]] = defaultdict(list)
        for setup, holding in outcomes:
            semester = _semester(setup)
            order[semester].append(setup.section_id)
            by_semester[semester] += [
                str(setup.section_id),
                from_,
                holding.value if holding else "-",
                self.encoded.entry(setup, holding or Holding.RESERVED),
                "due" if due else "",
            ]
        batch = Batch(self.scripts)
        for semester_id, args in by_semester.items():
            keys = [self.keys.holdings(student_id, semester_id), self.keys.student(student_id)]
            head: list[str | int] = [self.reservation_ms, op, generation]
            batch.call(Call(self.scripts.move, keys, [*head, *args]))
        if indexed:
            batch.zrem(self._index(student_id), self._member(student_id, indexed, op))
        self._log(batch, student_id, attempts, op, request_id)
        replies = await batch.execute()
        words: dict[UUID, str] = {}
        leaving: list[Leaving] = []
        for semester, (said, left) in zip(order, replies[: len(by_semester)], strict=True):
            for section_id, word in zip(order[semester], said, strict=True):
                words[section_id] = str(word)
                if word.startswith("REFUSED"):
                    log.info("holding %s of %s not moved: %s", section_id, student_id, word)
            leaving += _leaving(left, op)
        return Settled(words, leaving)

    def _log(
        self,
        batch: Batch,
        student_id: UUID,
        attempts: Sequence[Attempt],
        op: str,
        request_id: str,
    ) -> None:
        at = now_ms()
        for attempt in attempts:
            k = self.keys.section(attempt.section_id)
            entry = {
                F.KIND: ChangeKind.ATTEMPT,
                F.SECTION: str(attempt.section_id),
                F.STUDENT: str(student_id),
                F.REASON: attempt.reason,
                F.VERSION: "0",
                F.AT: str(at),
                F.REQUEST: request_id,
            }
            fields = [str(x) for pair in entry.items() for x in pair]
            keys = [k.stream, k.logged(op or request_id)]
            batch.call(Call(self.scripts.append, keys, [op, self.memo_ms, *fields]))

    async def leave(self, student_id: UUID, section: SectionSetup, op: str) -> Marked:
        semester = _semester(section)
        batch = Batch(self.scripts)
        self._indexed(batch, student_id, [section], op, self.leave_sweep_ms)
        keys = [self.keys.student(student_id), self.keys.holdings(student_id, semester)]
        args: list[str | int] = [str(section.section_id), self.leave_sweep_ms, op]
        batch.call(Call(self.scripts.mark, keys, args))
        _, found, *more = (await batch.execute())[-1]
        if found in ("BUSY", "UNAVAILABLE"):
            return Marked(None, [], busy=found == "BUSY", unavailable=found == "UNAVAILABLE")
        held = None if found == "-" else Holding(found)
        owner, *dependants = more
        return Marked(held, [UUID(d) for d in dependants], operation=str(owner))

    async def forget(
        self,
        student_id: UUID,
        semester_id: UUID,
        section_ids: Sequence[UUID],
        from_: str,
        op: str = "",
        indexed: Sequence[SectionSetup] = (),
    ) -> None:
        batch = Batch(self.scripts)
        if section_ids:
            args: list[str | int] = [self.reservation_ms, op, ""]
            for section_id in section_ids:
                args += [str(section_id), from_, "-", "{}", ""]
            keys = [self.keys.holdings(student_id, semester_id), self.keys.student(student_id)]
            batch.call(Call(self.scripts.move, keys, args))
        if indexed:
            batch.zrem(self._index(student_id), self._member(student_id, indexed, op))
        await batch.execute()

    async def done(self, student_id: UUID, op: str, indexed: Sequence[SectionSetup]) -> None:
        await self.redis.zrem(self._index(student_id), self._member(student_id, indexed, op))

    async def confirm_promotion(
        self,
        student_id: UUID,
        section: SectionSetup,
        op: str,
        reserve: bool = True,
        take_over: bool = True,
    ) -> tuple[Rejection | None, int, str]:
        semester_id = _semester(section)
        call = Call(
            self.scripts.confirm,
            [self.keys.student(student_id), self.keys.holdings(student_id, semester_id)],
            [
                str(section.section_id),
                self.max_credits,
                self.encoded.rules(section),
                1 if reserve else 0,
                self.reservation_ms,
                op,
                1 if take_over else 0,
            ],
        )
        batch = Batch(self.scripts)
        if reserve:
            self._indexed(batch, student_id, [section], op)
        batch.call(call)
        verdict, deadline, generation = (await batch.execute())[-1]
        return (None if verdict == "OK" else _rejection(verdict)), int(deadline), str(generation)

    async def mirror(self, rules: StudentRules) -> None:
        await self._load(rules, {}, generation="")

    async def load(
        self, rules: StudentRules, held: Mapping[UUID, Sequence[HeldSection]], generation: str
    ) -> None:
        await self._load(rules, held, generation)

    async def mirror_many(self, rules: Sequence[StudentRules]) -> None:
        """mirror for many students, pipelined (`coursereg import`'s new students)."""
        for i in range(0, len(rules), MIRROR_CHUNK):
            await self.scripts.run_many(
                [self._load_call(r, {}, generation="") for r in rules[i : i + MIRROR_CHUNK]]
            )

    async def _load(
        self, rules: StudentRules, held: Mapping[UUID, Sequence[HeldSection]], generation: str
    ) -> None:
        await self.scripts.run(self._load_call(rules, held, generation))

    def _load_call(
        self, rules: StudentRules, held: Mapping[UUID, Sequence[HeldSection]], generation: str
    ) -> Call:
        student = rules.student_id
        facts = {
            StudentFact.HOLDS: rules.holds,
            StudentFact.MAX_CREDITS: rules.max_credits,
            StudentFact.TICKETS: {
                str(semester): f"{epoch_ms(opens)},{epoch_ms(closes)}"
                for semester, (opens, closes) in rules.tickets.items()
            },
        }
        keys = [self.keys.student(student), self.keys.completed(student)]
        args = [generation, json.dumps(facts)]
        args.append(json.dumps([str(c) for c in rules.completed_courses]))
        for semester, sections in held.items():
            keys.append(self.keys.holdings(student, semester))
            entries = {
                str(h.section_id): _fields(h.rules, h.holding, h.swap_from) for h in sections
            }
            args.append(json.dumps(entries, separators=(",", ":")))
        return Call(self.scripts.load_student, keys, args)

    async def refresh_holdings(self, setup: SectionSetup, student_ids: Sequence[UUID]) -> int:
        """refresh.lua per student (their own slot), pipelined in chunks."""
        assert setup.rules is not None, "holdings copy only sections that carry rules"
        semester = setup.rules.semester_id
        copy = json.dumps(_holding_fields(setup.rules), separators=(",", ":"))
        section = str(setup.section_id)
        changed = 0
        for i in range(0, len(student_ids), REFRESH_CHUNK):
            batch = Batch(self.scripts)
            for student in student_ids[i : i + REFRESH_CHUNK]:
                keys = [self.keys.holdings(student, semester)]
                batch.call(Call(self.scripts.refresh, keys, [section, copy]))
            changed += sum(1 for state in await batch.execute() if state != "-")
        return changed

    async def holdings(self, student_id: UUID, semester_id: UUID) -> list[HoldingState]:
        raw: dict[Any, Any] = await self.redis.hgetall(self.keys.holdings(student_id, semester_id))
        found = []
        for section, text in raw.items():
            entry = json.loads(text)
            deadline = entry.get(H.DEADLINE)
            found.append(
                HoldingState(
                    UUID(section),
                    Holding(entry[H.STATE]),
                    None if deadline is None else int(deadline),
                    str(entry.get(H.OPERATION, "")),
                )
            )
        return found

    async def reindex(self, student_id: UUID, semesters: Sequence[UUID]) -> int:
        """Index again, due at once, this student's holdings in flight (R, P, D): their
        index entries were lost with the shard that kept them (a cluster node restarted
        empty), and without one nothing would ever settle them. The count indexed."""
        pipe = self.redis.pipeline(transaction=False)
        for semester in semesters:
            pipe.hgetall(self.keys.holdings(student_id, semester))
        members: dict[str, float] = {}
        for semester, raw in zip(semesters, await pipe.execute(), strict=True):
            for section, text in raw.items():
                entry = json.loads(text)
                if entry[H.STATE] in IN_FLIGHT:
                    op = entry.get(H.OPERATION, "")
                    members[f"{student_id}|{op}|{semester}:{section}"] = now_ms()
        if members:
            await self.redis.zadd(self._index(student_id), members)
        return len(members)

    async def due_reservations(
        self, shards: Sequence[int], limit: int = 200
    ) -> list[DueReservation]:
        """Saga steps in these shards whose request seems to have died mid-saga."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in shards:
            pipe.zrangebyscore(self.keys.reservations(shard), "-inf", now_ms(), 0, limit)
        due = []
        for members in await pipe.execute():
            for member in members:
                student, op, sections = str(member).split("|", 2)
                for pair in sections.split(","):
                    semester, section = pair.split(":")
                    ids = UUID(student), UUID(semester), UUID(section)
                    due.append(DueReservation(*ids, op, str(member)))
        return due

    async def clear_reservation(self, due: DueReservation) -> None:
        await self.redis.zrem(self._index(due.student_id), due.index_entry)
