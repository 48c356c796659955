"""RedisSeatStore: the SeatStore port on the Lua scripts of this folder."""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from uuid import UUID

from redis.commands.core import AsyncScript

from domain.errors import Unavailable
from domain.live import Standing, WaitlistStatus
from domain.model import (
    DropAnswer,
    DropOutcome,
    RegisterOutcome,
    SeatState,
    SectionResult,
    SectionSetup,
)
from domain.ports import CapacityChange
from domain.rules import Holder, HolderKind, Rejection, WaitlistMode
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.rules import epoch_ms, rules_json
from infrastructure.redis.scripts import MEMO_MS, Call, Scripts

# The scripts reply 0 seats for these; the count is not known, so the answer leaves it out.
UNKNOWN_SEATS = (Rejection.UNAVAILABLE, Rejection.SECTION_NOT_FOUND)
OPEN_CHUNK = 1_000


def _section_result(section_id: UUID, reply: list) -> SectionResult:
    outcome, seats, position, reason, *now = reply  # now: a replay's (register.lua)
    return SectionResult(
        section_id=section_id,
        outcome=RegisterOutcome(outcome),
        available_seats=None if reason in UNKNOWN_SEATS else int(seats),
        waitlist_position=int(position) or None,
        reason=Rejection(reason) if reason else None,
        now=RegisterOutcome(now[0]) if now else None,
    )


@unavailable_when_down
class RedisSeatStore:
    def __init__(
        self, redis: RedisClient, scripts: Scripts, keys: Keys, memo_ms: int = MEMO_MS
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.memo_ms = memo_ms

    def _call(
        self, script: AsyncScript, section_id: UUID, first: str, request_id: str, *more: str
    ) -> Call:
        k = self.keys.section(section_id)
        return Call(script, k.script_keys, (first, str(section_id), k.channel, request_id, *more))

    def _once(
        self,
        script: AsyncScript,
        section_id: UUID,
        first: str,
        request_id: str,
        more: Sequence[str],
        op: str,
        deadline: int,
        *after: str,
    ) -> Call:
        """A call that runs once per `op` and not after `deadline` (lib/once.lua): the
        memo key joins the KEYS, op, memo lifetime and deadline the ARGV."""
        k = self.keys.section(section_id)
        keys = [*k.script_keys, k.memo(op)] if op else k.script_keys
        args = (first, str(section_id), k.channel, request_id, *more)
        return Call(script, keys, (*args, op, str(self.memo_ms), str(deadline), *after))

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
        swap = str(replaces) if replaces else ""
        rules = checked or {}
        calls = [
            self._once(
                self.scripts.register,
                sid,
                str(student_id),
                request_id,
                (),
                op,
                deadline,
                swap,
                "1" if sid in held else "0",
                rules.get(sid, ""),
            )
            for sid in section_ids
        ]
        replies = await self.scripts.coalesced.run(calls)
        return [_section_result(sid, r) for sid, r in zip(section_ids, replies, strict=True)]

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
        flag = ("1" if checked else "0",)
        after = (why,) if why else ()
        calls = [
            self._once(
                self.scripts.drop, sid, str(student_id), request_id, flag, op, deadline, *after
            )
            for sid in section_ids
        ]
        answers: list[tuple[DropAnswer, list[Holder]] | None] = []
        for sid, (outcome, seats, *holders) in zip(
            section_ids, await self.scripts.coalesced.run(calls), strict=True
        ):
            if outcome == "UNAVAILABLE":
                raise Unavailable("seat state is being rebuilt; try again shortly")
            if outcome == "NOT_FOUND":
                answers.append(None)
                continue
            answer = DropAnswer(student_id, sid, DropOutcome(outcome), int(seats))
            answers.append((answer, _holders(sid, holders)))
        return answers

    async def set_capacity(
        self, section_id: UUID, total_seats: int, request_id: str, checked: bool
    ) -> tuple[CapacityChange, list[Holder]] | None:
        call = self._call(
            self.scripts.capacity, section_id, str(total_seats), request_id, "1" if checked else "0"
        )
        status, taken, seats, *holders = await self.scripts.run(call)
        if status == "UNAVAILABLE":
            raise Unavailable("seat state is being rebuilt; try again shortly")
        if status == "NOT_FOUND":
            return None
        change = CapacityChange(status == "OK", int(taken), int(seats), len(holders))
        return change, _holders(section_id, holders)

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
        call = self._once(
            self.scripts.resolve,
            section_id,
            str(student_id),
            request_id,
            (action, reason),
            op,
            deadline,
        )
        status, *holders = await self.scripts.run(call)
        if status == "UNAVAILABLE":
            raise Unavailable("seat state is being rebuilt; try again shortly")
        return WaitlistStatus(status), _holders(section_id, holders)

    async def due_holds(self, shards: Sequence[int], limit: int = 200) -> list[Holder]:
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for shard in shards:
            pipe.zrangebyscore(self.keys.held_index(shard), "-inf", now, 0, limit)
        due = []
        for members in await pipe.execute():
            for member in members:
                section, student = member.split("|")
                due.append((UUID(section), UUID(student)))
        if not due:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for section_id, student_id in due:
            pipe.hget(self.keys.section(section_id).held, str(student_id))
        holders = []
        for (section_id, student_id), held in zip(due, await pipe.execute(), strict=True):
            if held is None:  # settled already: the index entry is stale
                key = self.keys.section(section_id).held_index
                await self.redis.zrem(key, f"{section_id}|{student_id}")
                continue
            holders.append(Holder(section_id, student_id, HolderKind(held[0])))
        return holders

    async def states(self, section_ids: Sequence[UUID]) -> list[SeatState | None]:
        if not section_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for sid in section_ids:
            k = self.keys.section(sid)
            pipe.hmget(k.meta, "total", "version")
            pipe.get(k.seats)
            pipe.zcard(k.waitlist)
        replies = await pipe.execute()
        states: list[SeatState | None] = []
        for i, sid in enumerate(section_ids):
            (total, version), seats, waiting = replies[3 * i : 3 * i + 3]
            if total is None:
                states.append(None)
                continue
            states.append(
                SeatState(sid, int(total), max(int(seats or 0), 0), int(waiting), int(version))
            )
        return states

    async def ranks(self, student_id: UUID, section_ids: Sequence[UUID]) -> list[int | None]:
        if not section_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for sid in section_ids:
            pipe.zrank(self.keys.section(sid).waitlist, str(student_id))
        replies = await pipe.execute()
        return [None if r is None else int(r) + 1 for r in replies]

    async def open_section(self, setup: SectionSetup) -> None:
        await self.scripts.run(self._open(setup))

    async def open_sections(self, setups: Sequence[SectionSetup]) -> None:
        """open_section for many, pipelined (`coursereg import`)."""
        for i in range(0, len(setups), OPEN_CHUNK):
            await self.scripts.run_many([self._open(s) for s in setups[i : i + OPEN_CHUNK]])

    def _open(self, setup: SectionSetup) -> Call:
        k = self.keys.section(setup.section_id)
        args = [
            setup.total_seats,
            1 if setup.active else 0,
            epoch_ms(setup.opens_at),
            epoch_ms(setup.closes_at),
            setup.version,
            *static_fields(setup),
        ]
        return Call(self.scripts.open_section, [k.seats, k.enrolled, k.waitlist, k.meta], args)

    async def seats_taken(self, section_ids: Sequence[UUID]) -> list[tuple[int, int] | None]:
        """Per section, (total seats, seats taken: enrolled or held for a student in line)
        as capacity.lua counts them; None without live state."""
        pipe = self.redis.pipeline(transaction=False)
        for sid in section_ids:
            k = self.keys.section(sid)
            pipe.hget(k.meta, "total")
            pipe.scard(k.enrolled)
            pipe.hlen(k.held)
        replies = await pipe.execute()
        found: list[tuple[int, int] | None] = []
        for i in range(len(section_ids)):
            total, enrolled, held = replies[3 * i : 3 * i + 3]
            found.append(None if total is None else (int(total), int(enrolled) + int(held)))
        return found

    async def holders(self, section_id: UUID) -> list[UUID]:
        k = self.keys.section(section_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.smembers(k.enrolled)
        pipe.zrange(k.waitlist, 0, -1)
        pipe.hkeys(k.held)
        enrolled, waiting, held = await pipe.execute()
        return [UUID(s) for s in dict.fromkeys([*enrolled, *waiting, *held])]

    async def standing(self, student_id: UUID, section_id: UUID) -> Standing | None:
        k = self.keys.section(section_id)
        # MULTI: the reads and the version are one consistent snapshot.
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(k.meta, "version")
        pipe.sismember(k.enrolled, str(student_id))
        pipe.zrank(k.waitlist, str(student_id))
        pipe.hget(k.held, str(student_id))
        version, enrolled, rank, held = await pipe.execute()
        if version is None:
            return None
        if enrolled:
            return Standing(WaitlistStatus.ENROLLED, None, int(version))
        if rank is None:
            return Standing(WaitlistStatus.NOT_WAITLISTED, None, int(version))
        if held and held.startswith("o:"):
            return Standing(
                WaitlistStatus.OFFERED, int(rank) + 1, int(version), None, int(held[2:])
            )
        return Standing(WaitlistStatus.WAITING, int(rank) + 1, int(version))


def _holders(section_id: UUID, words: Sequence[str]) -> list[Holder]:
    """pass_on's replies ("p:<id>", "o:<id>", "e:<id>", see lib/line.lua)."""
    return [Holder(section_id, UUID(w[2:]), HolderKind(w[0])) for w in words]


def static_fields(setup: SectionSetup) -> list[str]:
    """The section's static meta fields for open_section.lua / load_section.lua, as pairs;
    an empty value removes the field."""
    rules = setup.rules
    if rules is None:
        return []
    return [
        "rules",
        rules_json(setup),
        "rv",
        rules.fingerprint(),
        "wlcap",
        "" if rules.waitlist_capacity is None else str(rules.waitlist_capacity),
        "mode",
        "offer" if rules.waitlist_mode is WaitlistMode.OFFER else "auto",
        "offer_ms",
        str(rules.offer_hours * 3600 * 1000),
    ]
