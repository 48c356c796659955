"""Cold start: rebuild Redis's live state from Postgres when Redis has lost it.

Each shard has a ready marker; seat scripts refuse to act on a shard without one. A
process that finds markers missing takes the rebuild lock, loads the shards' sections,
enrolled sets and waitlists from Postgres, re-creates the streams past the workers'
watermarks, and only then sets the markers. Two processes starting at once rebuild once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import ResponseError

from domain.model import SectionSetup
from infrastructure.losses import Backlog, describe, look, unrecovered
from infrastructure.postgres.snapshot import PostgresSnapshot, semesters_of
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys, shard_of
from infrastructure.redis.rules import RedisRuleStore, epoch_ms
from infrastructure.redis.scripts import Call, Scripts
from infrastructure.redis.seats import static_fields
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.redis.students import CachedStudentDirectory

log = logging.getLogger(__name__)

LOCK_MS = 300_000
SECTIONS_PER_ROUND = 200

# Called after each round of a rebuild with (sections loaded in it, sections in all).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RebuildReport:
    at: str
    shards: list[int]
    sections: int
    students: int
    seconds: float
    # The newest change Postgres holds per shard: anything answered after it and not yet
    # persisted when Redis lost its data could not be recovered.
    persisted_up_to: dict[int, str]
    # Per shard, what Postgres holds and what was waiting at the last look (losses.py).
    unrecovered: dict[int, dict[str, Any]]
    message: str


class StateLoader:
    def __init__(
        self,
        redis: RedisClient,
        scripts: Scripts,
        keys: Keys,
        snapshot: PostgresSnapshot,
        students: CachedStudentDirectory,
        stream: RedisChangeStream,
        rules: RedisRuleStore | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.snapshot = snapshot
        self.students = students
        self.stream = stream
        self.backlog: dict[int, Backlog] = {}
        self.rules = rules

    async def missing_shards(self) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.exists(self.keys.shard_ready(shard))
        present = await pipe.execute()
        return [shard for shard, ok in enumerate(present) if not ok]

    async def observe(self) -> list[int]:
        """The missing shards; notes the others' backlog, for a later rebuild to report what
        a loss of Redis's data took with it."""
        missing, backlog = await look(self.redis, self.keys)
        self.backlog.update(backlog)
        return missing

    async def ensure(self, wait_seconds: float = 300) -> RebuildReport | None:
        """Rebuild the missing shards, or wait while another process does."""
        deadline = time.monotonic() + wait_seconds
        token = uuid.uuid4().hex
        while await self.missing_shards():
            if await self.redis.set(self.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
                try:
                    missing = await self.missing_shards()
                    return await self._rebuild(missing) if missing else None
                finally:
                    await self.scripts.release(keys=[self.keys.rebuild_lock], args=[token])
            if time.monotonic() > deadline:
                raise TimeoutError("another process holds the rebuild lock for too long")
            await asyncio.sleep(0.1)
        return None

    async def rebuild(
        self,
        settle: Callable[[], Awaitable[bool]],
        progress: Progress | None = None,
        wait_seconds: float = 300,
    ) -> RebuildReport | None:
        """Rebuild every shard from Postgres although none is missing (`coursereg
        rebuild-cache`). Under the lock the ready markers go first, so the scripts refuse and
        nothing changes; then `settle` waits for changes already answered to reach Postgres.
        If it returns False the markers are put back untouched and None is returned."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not await self.redis.set(self.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
            if time.monotonic() > deadline:
                raise TimeoutError("another process holds the rebuild lock for too long")
            await asyncio.sleep(0.1)
        shards = list(range(self.keys.shards))
        markers = [self.keys.shard_ready(shard) for shard in shards]
        try:
            await self.observe()
            # One GET per marker, not MGET: each shard's marker is in its own slot.
            pipe = self.redis.pipeline(transaction=False)
            for marker in markers:
                pipe.get(marker)
            kept = await pipe.execute()
            await self.redis.delete(*markers)
            if not await settle():
                pipe = self.redis.pipeline(transaction=False)
                for marker, value in zip(markers, kept, strict=True):
                    if value is not None:
                        pipe.set(marker, value)
                await pipe.execute()
                return None
            return await self._rebuild(shards, progress)
        finally:
            await self.scripts.release(keys=[self.keys.rebuild_lock], args=[token])

    async def _rebuild(self, shards: list[int], progress: Progress | None = None) -> RebuildReport:
        started = time.perf_counter()
        wanted = set(shards)
        setups = [
            s
            for s in await self.snapshot.setups()
            if shard_of(s.section_id, self.keys.shards) in wanted
        ]
        for i in range(0, len(setups), SECTIONS_PER_ROUND):
            await self.load(setups[i : i + SECTIONS_PER_ROUND])
            if progress is not None:
                progress(len(setups[i : i + SECTIONS_PER_ROUND]), len(setups))
        students = await self.students.store_all(await self.snapshot.student_statuses())
        if self.rules is not None:
            await self.load_students()
        watermarks = await self.snapshot.watermarks()
        for shard in shards:
            await self._reopen_stream(shard, watermarks.get(shard))
        pipe = self.redis.pipeline(transaction=False)
        for shard in shards:
            pipe.set(self.keys.shard_ready(shard), datetime.now(UTC).isoformat())
        await pipe.execute()
        details = unrecovered(shards, watermarks, self.backlog)
        level, message = describe(details)
        report = RebuildReport(
            at=datetime.now(UTC).isoformat(),
            shards=shards,
            sections=len(setups),
            students=students,
            seconds=round(time.perf_counter() - started, 3),
            persisted_up_to={s: watermarks[s] for s in shards if s in watermarks},
            unrecovered=details,
            message=message,
        )
        await self.redis.set(self.keys.recovery, json.dumps(asdict(report)))
        log.log(
            level,
            "Live state of %d shard(s) (%d sections) rebuilt from Postgres in %.2fs. %s",
            len(shards),
            report.sections,
            report.seconds,
            message,
        )
        for shard in shards:
            self.backlog.pop(shard, None)  # that look was before this rebuild
        return report

    async def load(self, setups: list[SectionSetup]) -> None:
        """Replace these sections' live state with the record."""
        ids = [s.section_id for s in setups]
        enrolled = await self.snapshot.enrolled(ids, semesters_of(setups))
        waiting = await self.snapshot.waitlists(ids)
        offers = await self.snapshot.offers(ids)
        calls = []
        for setup in setups:
            k = self.keys.section(setup.section_id)
            members = [str(s) for s in enrolled.get(setup.section_id, [])]
            line = [
                str(x) for seq, student in waiting.get(setup.section_id, []) for x in (seq, student)
            ]
            statics = static_fields(setup)
            held = [
                x
                for student, expires in offers.get(setup.section_id, [])
                for x in (str(student), f"o:{epoch_ms(expires)}")
            ]
            args: list[str | int] = [
                setup.total_seats,
                1 if setup.active else 0,
                epoch_ms(setup.opens_at),
                epoch_ms(setup.closes_at),
                setup.version,
                str(setup.section_id),
                len(statics) // 2,
                *statics,
                len(members),
                *members,
                len(held) // 2,
                *held,
                *line,
            ]
            keys = [k.seats, k.enrolled, k.waitlist, k.meta, k.held, k.held_index]
            calls.append(Call(self.scripts.load_section, keys, args))
        await self.scripts.run_many(calls)

    async def load_students(self) -> int:
        """Every student's rule state (holds, tickets, limits, completed courses, and what
        they hold per semester) from the record."""
        assert self.rules is not None, "a loader that loads rule state has the rule store"
        everyone = await self.snapshot.all_student_rules()
        for rules in everyone:
            await self.rules.mirror(rules)
        for (student_id, semester_id), held in (await self.snapshot.holdings()).items():
            await self.rules.load_held(student_id, semester_id, held)
        return len(everyone)

    async def _reopen_stream(self, shard: int, watermark: str | None) -> None:
        """New stream ids must sort after everything Postgres already applied."""
        await self.stream.prepare(shard)
        if watermark and watermark != "0-0":
            try:
                await self.redis.execute_command("XSETID", self.keys.stream(shard), watermark)
            except ResponseError as exc:  # the stream already holds newer entries
                log.info("shard %d stream kept its ids: %s", shard, exc)

    async def last_report(self) -> dict[str, object] | None:
        raw = await self.redis.get(self.keys.recovery)
        return json.loads(raw) if raw else None
