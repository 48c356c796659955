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
    """The JSON event documented in drop.lua (register.lua sends its first fields)."""
    raw = json.loads(data)
    state = SeatState(
        section_id=UUID(raw["s"]),
        total_seats=int(raw["t"]),
        available_seats=max(int(raw["a"]), 0),
        waitlist_length=int(raw["w"]),
        version=int(raw["v"]),
    )
    return SectionEvent(
        state=state,
        kind=raw["k"],
        student_id=UUID(raw["u"]) if raw.get("u") else None,
        left_rank=int(raw.get("r", 0)),
        promoted=_ids(raw.get("p")),
        enrolled=UUID(raw["e"]) if raw.get("e") else None,
        offered=_ids(raw.get("o")),
        expires_ms=int(raw["x"]) if raw.get("x") else None,
        reason=raw.get("why"),
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
