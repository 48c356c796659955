"""RedisLiveEvents: the LiveEvents port on the pub/sub hub; decodes the seat scripts' events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from uuid import UUID

from domain.live import SectionEvent
from domain.model import SeatState
from domain.ports import Listener
from infrastructure.redis.hub import RedisHub
from infrastructure.redis.keys import Keys


def decode_section_event(data: str) -> SectionEvent:
    """The JSON event documented in register.lua and drop.lua."""
    raw = json.loads(data)
    state = SeatState(
        section_id=UUID(raw["s"]),
        total_seats=int(raw["t"]),
        available_seats=max(int(raw["a"]), 0),
        waitlist_length=int(raw["w"]),
        version=int(raw["v"]),
    )
    promoted = raw.get("p") or []
    return SectionEvent(
        state=state,
        kind=raw["k"],
        student_id=UUID(raw["u"]) if raw.get("u") else None,
        left_rank=int(raw.get("r", 0)),
        promoted=tuple(UUID(p) for p in promoted) if isinstance(promoted, list) else (),
    )


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
