"""Compare Redis's live state with Postgres's record, section by section. Meaningful once the
streams are drained: until then Postgres is behind by design. A repair is a rebuild of the
drifted sections' shards (recovery.py: markers down, streams drained, then reloaded), never
a reload under live traffic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from domain.model import SectionSetup
from infrastructure.postgres.snapshot import PostgresSnapshot, semesters_of
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys, shard_of
from infrastructure.state.recovery import StateLoader

ROUND = 200


@dataclass(frozen=True, slots=True)
class LiveSection:
    total: int
    seats: int
    enrolled: frozenset[str]
    waitlist: tuple[str, ...]
    held: int = 0  # seats held for students in line (pending a check, or offered)


@dataclass(slots=True)
class Drift:
    section_id: UUID
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    sections: int = 0
    drifted: list[Drift] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drifted


async def live_sections(
    redis: RedisClient, keys: Keys, ids: list[UUID]
) -> list[LiveSection | None]:
    pipe = redis.pipeline(transaction=False)
    for sid in ids:
        k = keys.section(sid)
        pipe.hget(k.meta, "total")
        pipe.get(k.seats)
        pipe.smembers(k.enrolled)
        pipe.zrange(k.waitlist, 0, -1)
        pipe.hlen(k.held)
    replies = await pipe.execute()
    found: list[LiveSection | None] = []
    for i in range(len(ids)):
        total, seats, enrolled, waitlist, held = replies[5 * i : 5 * i + 5]
        if total is None:
            found.append(None)
        else:
            found.append(
                LiveSection(
                    int(total), int(seats or 0), frozenset(enrolled), tuple(waitlist), int(held)
                )
            )
    return found


def compare(
    setup: SectionSetup, live: LiveSection | None, enrolled: set[str], waiting: list[str]
) -> list[str]:
    if live is None:
        return ["missing in Redis"]
    problems = []
    if live.total != setup.total_seats:
        problems.append(f"total seats: Redis {live.total}, Postgres {setup.total_seats}")
    if len(live.enrolled) > live.total:
        problems.append(f"oversold in Redis: {len(live.enrolled)} enrolled of {live.total}")
    if len(live.enrolled) + live.held > live.total:
        problems.append(f"over-held in Redis: {live.held} seats held beyond the total")
    if live.seats != live.total - len(live.enrolled) - live.held:
        problems.append(
            f"seat count {live.seats} != {live.total} - {len(live.enrolled)} enrolled"
            f" - {live.held} held"
        )
    if live.enrolled != enrolled:
        only_redis = len(live.enrolled - enrolled)
        only_pg = len(enrolled - live.enrolled)
        problems.append(f"enrolled differ: {only_redis} only in Redis, {only_pg} only in Postgres")
    if list(live.waitlist) != waiting:
        problems.append(f"waitlist differs: Redis {len(live.waitlist)}, Postgres {len(waiting)}")
    if live.enrolled & set(live.waitlist):
        problems.append("students both enrolled and waiting in Redis")
    return problems


class Reconciler:
    def __init__(
        self, redis: RedisClient, keys: Keys, snapshot: PostgresSnapshot, loader: StateLoader
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.snapshot = snapshot
        self.loader = loader

    async def run(
        self,
        only: set[UUID] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Report:
        """`progress`, if given, is called after each round with (sections checked in it,
        sections in all)."""
        report = Report()
        setups = [s for s in await self.snapshot.setups() if only is None or s.section_id in only]
        for i in range(0, len(setups), ROUND):
            chunk = setups[i : i + ROUND]
            await self._check(chunk, report)
            if progress is not None:
                progress(len(chunk), len(setups))
        return report

    def shards_of(self, report: Report) -> list[int]:
        """The shards a repair rebuilds: those of the drifted sections."""
        return sorted({shard_of(d.section_id, self.keys.shards) for d in report.drifted})

    async def _check(self, setups: list[SectionSetup], report: Report) -> None:
        ids = [s.section_id for s in setups]
        live = await live_sections(self.redis, self.keys, ids)
        enrolled = await self.snapshot.enrolled(ids, semesters_of(setups))
        waiting = await self.snapshot.waitlists(ids)
        for setup, state in zip(setups, live, strict=True):
            report.sections += 1
            problems = compare(
                setup,
                state,
                {str(s) for s in enrolled.get(setup.section_id, [])},
                [str(s) for _, s in waiting.get(setup.section_id, [])],
            )
            if problems:
                report.drifted.append(Drift(setup.section_id, problems))
