"""RedisSeatStore: the SeatStore port on the Lua scripts of this folder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from redis.asyncio import Redis
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
from infrastructure.redis.keys import Keys
from infrastructure.redis.scripts import Call, Scripts


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# The scripts reply 0 seats for these; the count is not known, so the answer leaves it out.
UNKNOWN_SEATS = ("UNAVAILABLE", "SECTION_NOT_FOUND")


def _section_result(section_id: UUID, reply: list) -> SectionResult:
    outcome, seats, position, reason = reply
    return SectionResult(
        section_id=section_id,
        outcome=RegisterOutcome(outcome),
        available_seats=None if reason in UNKNOWN_SEATS else int(seats),
        waitlist_position=int(position) or None,
        reason=reason or None,
    )


class RedisSeatStore:
    def __init__(self, redis: Redis, scripts: Scripts, keys: Keys) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys

    def _call(self, script: AsyncScript, section_id: UUID, first: str, request_id: str) -> Call:
        k = self.keys.section(section_id)
        return Call(script, k.script_keys, (first, str(section_id), k.channel, request_id))

    async def register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str
    ) -> list[SectionResult]:
        calls = [
            self._call(self.scripts.register, sid, str(student_id), request_id)
            for sid in section_ids
        ]
        replies = await self.scripts.run_many(calls)
        return [_section_result(sid, r) for sid, r in zip(section_ids, replies, strict=True)]

    async def drop(self, student_id: UUID, section_id: UUID, request_id: str) -> DropAnswer | None:
        call = self._call(self.scripts.drop, section_id, str(student_id), request_id)
        outcome, seats, _promoted = await self.scripts.run(call)
        if outcome == "UNAVAILABLE":
            raise Unavailable("seat state is being rebuilt; try again shortly")
        if outcome == "NOT_FOUND":
            return None
        return DropAnswer(student_id, section_id, DropOutcome(outcome), int(seats))

    async def set_capacity(
        self, section_id: UUID, total_seats: int, request_id: str
    ) -> CapacityChange | None:
        call = self._call(self.scripts.capacity, section_id, str(total_seats), request_id)
        status, enrolled, seats, promoted = await self.scripts.run(call)
        if status == "UNAVAILABLE":
            raise Unavailable("seat state is being rebuilt; try again shortly")
        if status == "NOT_FOUND":
            return None
        return CapacityChange(status == "OK", int(enrolled), int(seats), int(promoted))

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
        k = self.keys.section(setup.section_id)
        await self.scripts.open_section(
            keys=[k.seats, k.enrolled, k.waitlist, k.meta],
            args=[
                setup.total_seats,
                1 if setup.active else 0,
                epoch_ms(setup.opens_at),
                epoch_ms(setup.closes_at),
                setup.version,
            ],
        )

    async def standing(self, student_id: UUID, section_id: UUID) -> Standing | None:
        k = self.keys.section(section_id)
        # MULTI: the three reads and the version are one consistent snapshot.
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(k.meta, "version")
        pipe.sismember(k.enrolled, str(student_id))
        pipe.zrank(k.waitlist, str(student_id))
        version, enrolled, rank = await pipe.execute()
        if version is None:
            return None
        if enrolled:
            return Standing(WaitlistStatus.ENROLLED, None, int(version))
        if rank is None:
            return Standing(WaitlistStatus.NOT_WAITLISTED, None, int(version))
        return Standing(WaitlistStatus.WAITING, int(rank) + 1, int(version))
