"""Everything the checks read, in one pipelined round trip: each shard's ready marker and
stream, each section's seats, enrolled set, line and held seats, each student's holdings,
and the sweeper's indexes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from infrastructure.container import Container
from infrastructure.redis.keys import shard_of
from tests.explorer.world import World

Entry = tuple[str, dict[str, str]]  # a stream entry: id, fields


@dataclass(frozen=True, slots=True)
class SectionState:
    total: int | None  # None: the section has no live state (its shard is being reloaded)
    seats: int
    enrolled: frozenset[str]
    line: tuple[str, ...]  # in join order
    held: dict[str, str]  # student -> "p:<expires>" | "o:<expires>"


@dataclass(frozen=True, slots=True)
class Snapshot:
    ready: dict[int, bool]
    streams: dict[int, list[Entry]]
    sections: dict[UUID, SectionState]
    holdings: dict[UUID, dict[str, dict[str, Any]]]  # student -> section id -> entry
    reservations: int  # entries in the reservation indexes (requests that may have died)
    held_index: int  # entries in the held-seat indexes
    # students whose slot is loaded (lib/holding.lua); a lost one is frozen until reloaded
    loaded: frozenset[UUID] = frozenset()

    def shard_ready(self, section_id: UUID) -> bool:
        return self.ready[shard_of(section_id, len(self.ready))]


async def take(container: Container, world: World) -> Snapshot:
    keys, shards = container.keys, range(container.keys.shards)
    pipe = container.redis.pipeline(transaction=False)
    for shard in shards:
        pipe.exists(keys.shard_ready(shard))
        pipe.xrange(keys.stream(shard))
        pipe.zcard(keys.reservations(shard))
        pipe.zcard(keys.held_index(shard))
    for s in world.sections:
        k = keys.section(s.id)
        pipe.hget(k.meta, "total")
        pipe.get(k.seats)
        pipe.smembers(k.enrolled)
        pipe.zrange(k.waitlist, 0, -1)
        pipe.hgetall(k.held)
    for st in world.students:
        pipe.hgetall(keys.holdings(st.id, world.semester_id))
    for st in world.students:
        pipe.hget(keys.student(st.id), "ld")
    replies = iter(await pipe.execute())
    ready, streams, reservations, held_index = {}, {}, 0, 0
    for shard in shards:
        ready[shard] = bool(next(replies))
        streams[shard] = [(i, dict(f)) for i, f in next(replies) or []]
        reservations += int(next(replies))
        held_index += int(next(replies))
    sections = {}
    for s in world.sections:
        total, seats, enrolled, line, held = (next(replies) for _ in range(5))
        sections[s.id] = SectionState(
            None if total is None else int(total),
            int(seats or 0),
            frozenset(enrolled),
            tuple(line),
            dict(held),
        )
    holdings = {
        st.id: {sid: json.loads(raw) for sid, raw in next(replies).items()} for st in world.students
    }
    loaded = frozenset(st.id for st in world.students if next(replies) is not None)
    return Snapshot(ready, streams, sections, holdings, reservations, held_index, loaded)
