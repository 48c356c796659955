"""RedisLiveEvents: the LiveEvents port on the pub/sub hub; decodes the seat scripts' events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

from domain.live import SectionEvent
from domain.model import SeatState
from domain.ports import Listener
from domain.wire import EventField as E
from infrastructure.redis.hub import RedisHub
from infrastructure.redis.keys import Keys


def decode_section_event(data: str) -> SectionEvent:
    """A section script's JSON event (domain/wire.py EventField; register.lua sends the
    first seven fields)."""
    raw = json.loads(data)
    state = SeatState(
        section_id=UUID(raw[E.SECTION]),
        total_seats=int(raw[E.TOTAL]),
        available_seats=max(int(raw[E.AVAILABLE]), 0),
        waitlist_length=int(raw[E.WAITLIST]),
        version=int(raw[E.VERSION]),
    )
    student, enrolled, expires = raw.get(E.STUDENT), raw.get(E.ENROLLED), raw.get(E.EXPIRES)
    return SectionEvent(
        state=state,
        kind=raw[E.KIND],
        student_id=UUID(student) if student else None,
        left_rank=int(raw.get(E.RANK, 0)),
        promoted=_ids(raw.get(E.PROMOTED)),
        enrolled=UUID(enrolled) if enrolled else None,
        offered=_ids(raw.get(E.OFFERED)),
        expires_ms=int(expires) if expires else None,
        reason=raw.get(E.REASON),
    )


def _ids(value: object) -> tuple[UUID, ...]:
    # cjson encodes an empty Lua table as {}, so only a list holds ids.
    return tuple(UUID(v) for v in value) if isinstance(value, list) else ()


class RedisLiveEvents:
    def __init__(self, hub: RedisHub, keys: Keys) -> None:
        self.hub = hub
        self.keys = keys

    def _channels(self, section_ids: Sequence[UUID]) -> list[str]:
        return [self.keys.section_channel(s) for s in section_ids]

    async def watch(self, section_ids: Sequence[UUID], listener: Listener) -> None:
        await self.hub.add(listener, self._channels(section_ids))

    async def unwatch(self, section_ids: Sequence[UUID], listener: Listener) -> None:
        await self.hub.remove(listener, self._channels(section_ids))
