"""RedisRuleStore: the RuleStore port, in each student's own slot (reserve.lua, settle.lua,
forget.lua, confirm.lua), and the JSON shape of a section's rule data those scripts read."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.model import SectionSetup
from domain.rules import (
    Attempt,
    DueReservation,
    HeldSection,
    Holding,
    Meeting,
    SectionRules,
    StudentRules,
    Verdict,
    WaitlistMode,
)
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys, shard_of
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import Batch, Call, Scripts

RESERVATION_MS = 30_000


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


def _holding_fields(rules: SectionRules) -> dict[str, object]:
    return {
        "c": str(rules.course_id),
        "cr": rules.credits,
        "m": [list(i) for i in rules.intervals()],
        "l": [str(s) for s in rules.linked_sections],
    }


def rules_json(setup: SectionSetup) -> str:
    """The section's rule data as reserve.lua reads it (id, o, x, c, cr, m, l, p), plus what
    rebuilds the domain's SectionRules from it (sem, mt, wc, wm, oh). Stored in the section's
    meta hash and cached per process, so requests pass it along without encoding it again."""
    rules = setup.rules
    assert rules is not None, "rules are checked only for sections that carry them"
    body = {
        "id": str(setup.section_id),
        "o": epoch_ms(setup.opens_at),
        "x": epoch_ms(setup.closes_at),
        "p": [str(c) for c in rules.prerequisites],
        **_holding_fields(rules),
        "sem": str(rules.semester_id),
        "mt": [[list(m.days), m.start_time, m.end_time, m.location] for m in rules.meetings],
        "wc": rules.waitlist_capacity,
        "wm": rules.waitlist_mode.value,
        "oh": rules.offer_hours,
    }
    return json.dumps(body, separators=(",", ":"))


def decode_rules(text: str) -> SectionRules:
    body = json.loads(text)
    return SectionRules(
        course_id=UUID(body["c"]),
        semester_id=UUID(body["sem"]),
        credits=float(body["cr"]),
        meetings=tuple(Meeting(tuple(d), s, e, loc) for d, s, e, loc in body["mt"]),
        linked_sections=tuple(UUID(x) for x in body["l"]),
        prerequisites=tuple(UUID(x) for x in body["p"]),
        waitlist_capacity=body["wc"],
        waitlist_mode=WaitlistMode(body["wm"]),
        offer_hours=int(body["oh"]),
    )


def _entry(rules: SectionRules, holding: Holding, swap_from: UUID | None = None) -> str:
    entry = {"h": holding.value, **_holding_fields(rules)}
    if swap_from is not None:
        entry["sw"] = str(swap_from)
    return json.dumps(entry, separators=(",", ":"))


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


def _verdict(section_id: UUID, word: str) -> Verdict:
    if word == "OK":
        return Verdict(section_id)
    if word.startswith("HELD:"):
        return Verdict(section_id, held=Holding(word.removeprefix("HELD:")))
    return Verdict(section_id, reason=word)


def _semester(setup: SectionSetup) -> UUID:
    assert setup.rules is not None, "rules are checked only for sections that carry them"
    return setup.rules.semester_id


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
        # Swept a while after their deadline: a slow request settles its own first.
        self.sweep_after_ms = 2 * reservation_ms

    def _index(self, student_id: UUID) -> str:
        return self.keys.reservations(shard_of(student_id, self.keys.shards))

    def _member(self, student_id: UUID, setups: Sequence[SectionSetup], request_id: str) -> str:
        """One index entry per request, naming its sections: one command to write and one
        to clear, and concurrent requests never clear each other's."""
        sections = ",".join(f"{_semester(s)}:{s.section_id}" for s in setups)
        return f"{student_id}|{request_id}|{sections}"

    async def reserve(
        self,
        student_id: UUID,
        sections: Sequence[SectionSetup],
        all_section_ids: Sequence[UUID],
        request_id: str,
        swap_from: UUID | None = None,
    ) -> list[Verdict]:
        """One reserve.lua per semester, the reservations indexed for the sweeper first,
        in one pipelined round trip."""
        if not sections:
            return []
        by_semester: dict[UUID, list[SectionSetup]] = defaultdict(list)
        for setup in sections:
            by_semester[_semester(setup)].append(setup)
        batch = Batch(self.scripts)
        due = now_ms() + self.sweep_after_ms
        batch.zadd(self._index(student_id), {self._member(student_id, sections, request_id): due})
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
                        *(self.encoded.rules(s) for s in group),
                    ],
                )
            )
        replies = await batch.execute()
        verdicts: dict[UUID, Verdict] = {}
        for group, reply in zip(by_semester.values(), replies[1:], strict=True):
            for setup, word in zip(group, reply, strict=True):
                verdicts[setup.section_id] = _verdict(setup.section_id, word)
        return [verdicts[s.section_id] for s in sections]

    async def settle(
        self,
        student_id: UUID,
        outcomes: Sequence[tuple[SectionSetup, Holding | None]],
        request_id: str,
        indexed: Sequence[SectionSetup] = (),
        attempts: Sequence[Attempt] = (),
        swap: tuple[UUID, UUID] | None = None,
    ) -> list[UUID]:
        """Settle this request's reservations (None releases them), clear the index entries
        it made for `indexed`, log its refused sections and record a swap left waiting
        (new section, the one it replaces), in one round trip; returns the sections
        swapped away."""
        by_semester: dict[UUID, list[str]] = defaultdict(list)
        for setup, holding in outcomes:
            assert setup.rules is not None
            by_semester[setup.rules.semester_id] += [
                str(setup.section_id),
                holding.value if holding else "X",
                self.encoded.entry(setup, holding or Holding.RESERVED),
            ]
        batch = Batch(self.scripts)
        for semester_id, args in by_semester.items():
            batch.call(
                Call(self.scripts.settle, [self.keys.holdings(student_id, semester_id)], args)
            )
        if indexed:
            batch.zrem(self._index(student_id), self._member(student_id, indexed, request_id))
        at = now_ms()
        for attempt in attempts:
            fields = {
                "k": "attempt",
                "s": str(attempt.section_id),
                "u": str(student_id),
                "why": attempt.reason,
                "v": 0,
                "at": at,
                "rid": request_id,
            }
            batch.xadd(self.keys.section(attempt.section_id).stream, fields)
        if swap is not None:
            new, old = swap
            intent = {
                "k": "swapwait",
                "s": str(new),
                "u": str(student_id),
                "f": str(old),
                "v": 0,
                "at": at,
                "rid": request_id,
            }
            batch.xadd(self.keys.section(new).stream, intent)
        replies = await batch.execute()
        return [UUID(s) for reply in replies[: len(by_semester)] for s in reply]

    async def release(self, student_id: UUID, semester_id: UUID, section_id: UUID) -> list[UUID]:
        reply = await self.scripts.forget(
            keys=[self.keys.holdings(student_id, semester_id)], args=[str(section_id), 1]
        )
        return [UUID(s) for s in reply]

    async def forget(self, student_id: UUID, semester_id: UUID, section_id: UUID) -> None:
        await self.scripts.forget(
            keys=[self.keys.holdings(student_id, semester_id)], args=[str(section_id), 0]
        )

    async def confirm_promotion(
        self, student_id: UUID, section: SectionSetup, request_id: str, reserve: bool = True
    ) -> str | None:
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
            ],
        )
        batch = Batch(self.scripts)
        if reserve:
            member = self._member(student_id, [section], request_id)
            batch.zadd(self._index(student_id), {member: now_ms() + self.sweep_after_ms})
        batch.call(call)
        verdict = (await batch.execute())[-1]
        return None if verdict == "OK" else str(verdict)

    async def mirror(self, rules: StudentRules) -> None:
        key = self.keys.student(rules.student_id)
        fields: dict[Any, Any] = {
            f"tk:{semester}": f"{epoch_ms(opens)},{epoch_ms(closes)}"
            for semester, (opens, closes) in rules.tickets.items()
        }
        present: list[Any] = await self.redis.hkeys(key)
        stale = [f for f in present if str(f).startswith("tk:") and f not in fields]
        fields.update({"holds": rules.holds, "maxcr": rules.max_credits})
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping=fields)
        if stale:
            pipe.hdel(key, *stale)
        done = self.keys.completed(rules.student_id)
        pipe.delete(done)
        if rules.completed_courses:
            pipe.sadd(done, *(str(c) for c in rules.completed_courses))
        await pipe.execute()

    async def load_held(
        self, student_id: UUID, semester_id: UUID, held: Sequence[HeldSection]
    ) -> None:
        key = self.keys.holdings(student_id, semester_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if held:
            entries: dict[Any, Any] = {
                str(h.section_id): _entry(h.rules, h.holding, h.swap_from) for h in held
            }
            pipe.hset(key, mapping=entries)
        await pipe.execute()

    async def due_reservations(
        self, shards: Sequence[int], limit: int = 200
    ) -> list[DueReservation]:
        """Reservations in these shards whose request seems to have died mid-saga."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in shards:
            pipe.zrangebyscore(self.keys.reservations(shard), "-inf", now_ms(), 0, limit)
        due = []
        for members in await pipe.execute():
            for member in members:
                student, request_id, sections = str(member).split("|", 2)
                for pair in sections.split(","):
                    semester, section = pair.split(":")
                    due.append(
                        DueReservation(
                            UUID(student), UUID(semester), UUID(section), request_id, str(member)
                        )
                    )
        return due

    async def clear_reservation(self, due: DueReservation) -> None:
        await self.redis.zrem(self._index(due.student_id), due.index_entry)
