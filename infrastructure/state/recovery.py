"""Rebuild Redis's live state from Postgres: when Redis lost it (all of it, or one cluster
node's share), and on an operator's `rebuild-cache` or `reconcile --repair`.

Each shard has a ready marker; seat scripts refuse to act on a shard without one. Each
student's slot has its own (lib/holding.lua): the student scripts refuse without it. A
process that finds markers missing takes the rebuild lock, re-creates the streams past the
workers' watermarks, loads the shards' sections, enrolled sets and waitlists (a seat free
while students wait goes back to the line), then the students whose slot was lost, and
only then sets the markers. Two processes starting at once rebuild once.

The live state never disagrees with what the streams will still persist: a rebuild of
shards that still hold their data takes their markers down first (nothing changes there
any more), waits until Postgres has applied their streams up to that point, and only then
reloads; students lost with a node are loaded once the other shards are drained up to the
moment of the loss (their slot refuses every change meanwhile), with their holdings in
flight kept. A partial rebuild touches only the lost shards and the lost students.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.exceptions import ResponseError

from domain.changes import parse_position
from domain.model import SectionSetup
from domain.rules import HeldSection
from infrastructure.postgres.snapshot import PostgresSnapshot, semesters_of
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys, shard_of
from infrastructure.redis.rules import RedisRuleStore, epoch_ms
from infrastructure.redis.scripts import Call, Scripts
from infrastructure.redis.seats import static_fields
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.redis.students import CachedStudentDirectory
from infrastructure.state.losses import Backlog, describe, look, unrecovered

log = logging.getLogger(__name__)

LOCK_MS = 300_000
SECTIONS_PER_ROUND = 200
STUDENTS_PER_ROUND = 500
DRAIN_POLL_SECONDS = 0.1
# How long a rebuild of lost students waits for the other shards to drain, per try (the
# state watcher tries again while `students:loaded` is missing).
STUDENT_DRAIN_SECONDS = 30.0

# Called after each round of a rebuild with (sections loaded in it, sections in all).
Progress = Callable[[int, int], None]
# Per shard, the last entry its stream held when its changes were cut off: a rebuild may
# read the record once Postgres applied that far.
Cuts = dict[int, str]
# Waits until Postgres applied the streams up to the cuts; False when it gave up.
Drain = Callable[[Cuts], Awaitable[bool]]


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
        rules: RedisRuleStore,
        checked: bool = True,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        self.snapshot = snapshot
        self.students = students
        self.stream = stream
        self.backlog: dict[int, Backlog] = {}
        self.rules = rules
        self.checked = checked  # registration rules on: a freed seat is held for a check

    async def missing_shards(self) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(self.keys.shards):
            pipe.exists(self.keys.shard_ready(shard))
        present = await pipe.execute()
        return [shard for shard, ok in enumerate(present) if not ok]

    async def students_ready(self) -> bool:
        return bool(await self.redis.exists(self.keys.students_loaded))

    async def observe(self) -> bool:
        """Whether something is to rebuild (a shard's marker or the students' is missing);
        notes the other shards' backlog, for a later rebuild to report what a loss of
        Redis's data took with it."""
        missing, backlog = await look(self.redis, self.keys)
        self.backlog.update(backlog)
        return bool(missing) or not await self.students_ready()

    async def ensure(self, wait_seconds: float = 300) -> RebuildReport | None:
        """Rebuild what Redis lost (shards, students), or wait while another process does."""
        deadline = time.monotonic() + wait_seconds
        while await self.missing_shards() or not await self.students_ready():
            token = uuid.uuid4().hex
            if await self.redis.set(self.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
                try:
                    return await self._recover()
                finally:
                    await self.scripts.release(keys=[self.keys.rebuild_lock], args=[token])
            if time.monotonic() > deadline:
                raise TimeoutError("another process holds the rebuild lock for too long")
            await asyncio.sleep(0.1)
        return None

    async def _recover(self) -> RebuildReport | None:
        missing = await self.missing_shards()
        report = await self._rebuild(missing) if missing else None
        if missing and len(missing) < self.keys.shards:
            await self._reindex(missing)
        if not await self.students_ready():
            # Students lost with a node: once the shards that kept their data have
            # persisted what they hold now, the record has everything those students did.
            kept = [s for s in range(self.keys.shards) if s not in missing]
            if await self.wait_drained(await self.cuts(kept), STUDENT_DRAIN_SECONDS):
                await self._reload_students(everyone=False)
            else:
                log.warning("lost students wait for the streams to drain; trying again")
        return report

    async def rebuild(
        self,
        drain: Drain,
        progress: Progress | None = None,
        wait_seconds: float = 300,
        shards: Sequence[int] | None = None,
    ) -> RebuildReport | None:
        """Rebuild shards from Postgres although they are not missing (`coursereg
        rebuild-cache`, `reconcile --repair`): under the lock their ready markers go first,
        so their scripts refuse and nothing changes there; then `drain` waits until
        Postgres applied their streams up to that point, and the live state is reloaded
        from it (with every student's rule state, in-flight holdings kept). If `drain`
        gives up, the markers are put back untouched and None is returned."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_seconds
        while not await self.redis.set(self.keys.rebuild_lock, token, nx=True, px=LOCK_MS):
            if time.monotonic() > deadline:
                raise TimeoutError("another process holds the rebuild lock for too long")
            await asyncio.sleep(0.1)
        chosen = list(range(self.keys.shards)) if shards is None else sorted(set(shards))
        markers = [self.keys.shard_ready(shard) for shard in chosen]
        try:
            await self.observe()
            # One GET and one DEL per marker, not MGET: each shard's marker is in its slot.
            pipe = self.redis.pipeline(transaction=False)
            for marker in markers:
                pipe.get(marker)
            kept = await pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
            for marker in markers:
                pipe.delete(marker)
            await pipe.execute()
            # Read after the markers are gone: no section change can follow these ids.
            if not await drain(await self.cuts(chosen)):
                pipe = self.redis.pipeline(transaction=False)
                for marker, value in zip(markers, kept, strict=True):
                    if value is not None:
                        pipe.set(marker, value)
                await pipe.execute()
                return None
            return await self._rebuild(chosen, progress, everyone=True)
        finally:
            await self.scripts.release(keys=[self.keys.rebuild_lock], args=[token])

    async def cuts(self, shards: Sequence[int]) -> Cuts:
        """Each shard stream's last entry now (shards with none are left out)."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in shards:
            pipe.xrevrange(self.keys.stream(shard), count=1)
        replies = await pipe.execute()
        return {shard: reply[0][0] for shard, reply in zip(shards, replies, strict=True) if reply}

    async def drained(self, cuts: Cuts) -> bool:
        """Whether Postgres applied every shard's stream up to its cut."""
        if not cuts:
            return True
        watermarks = await self.snapshot.watermarks()
        for shard, cut in cuts.items():
            applied = watermarks.get(shard)
            if applied is None or parse_position(applied) < parse_position(cut):
                return False
        return True

    async def wait_drained(self, cuts: Cuts, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not await self.drained(cuts):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_SECONDS)
        return True

    async def _rebuild(
        self, shards: list[int], progress: Progress | None = None, everyone: bool = False
    ) -> RebuildReport:
        """Reload these shards' sections and set their markers; with `everyone`, every
        student's rule state too, before the markers (the streams are drained)."""
        started = time.perf_counter()
        wanted = set(shards)
        watermarks = await self.snapshot.watermarks()
        # Streams first: a load that hands seats to the line appends to them, after the
        # ids Postgres already applied.
        for shard in shards:
            await self._reopen_stream(shard, watermarks.get(shard))
        setups = [
            s
            for s in await self.snapshot.setups()
            if shard_of(s.section_id, self.keys.shards) in wanted
        ]
        for i in range(0, len(setups), SECTIONS_PER_ROUND):
            await self.load(setups[i : i + SECTIONS_PER_ROUND])
            if progress is not None:
                progress(len(setups[i : i + SECTIONS_PER_ROUND]), len(setups))
        students = await self._reload_students(everyone=True) if everyone else 0
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
                k.channel,
                1 if self.checked else 0,
                len(statics) // 2,
                *statics,
                len(members),
                *members,
                len(held) // 2,
                *held,
                *line,
            ]
            calls.append(Call(self.scripts.load_section, k.script_keys, args))
        await self.scripts.run_many(calls)

    async def _reload_students(self, everyone: bool) -> int:
        """Every student's status and rule state (everyone), or those of the students whose
        slot lost it; then `students:loaded`. The number reloaded."""
        statuses = await self.snapshot.student_statuses()
        await self.redis.delete(self.keys.students_loaded)
        if not everyone:
            statuses = await self._lost(statuses)
        await self.students.store_all(statuses)
        count = await self.load_students({student for student, _ in statuses})
        await self.redis.set(self.keys.students_loaded, "1")
        log.info("rule state of %d student(s) loaded from Postgres", count)
        return count

    async def _reindex(self, shards: list[int]) -> None:
        """The sweeper's index of sagas in flight lives in the shard of the student's id: for
        the students indexed in the lost shards, index their in-flight holdings again (their
        slots may have survived on another node)."""
        lost = set(shards)
        terms = list({s.rules.semester_id for s in await self.snapshot.setups() if s.rules})
        count = 0
        for student, _ in await self.snapshot.student_statuses():
            if shard_of(student, self.keys.shards) in lost:
                count += await self.rules.reindex(student, terms)
        if count:
            log.info("%d saga step(s) in flight indexed again for the sweeper", count)

    async def _lost(self, statuses: list[tuple[UUID, str]]) -> list[tuple[UUID, str]]:
        """The students whose slot is not loaded (lib/holding.lua)."""
        pipe = self.redis.pipeline(transaction=False)
        for student, _ in statuses:
            pipe.hget(self.keys.student(student), "ld")
        marks = await pipe.execute()
        return [pair for pair, mark in zip(statuses, marks, strict=True) if mark is None]

    async def load_students(self, which: set[UUID]) -> int:
        """These students' rule state (holds, tickets, limits, completed courses, and what
        they hold per semester) from the record, one atomic step each (load_student.lua)."""
        if not which:
            return 0
        chosen = [r for r in await self.snapshot.all_student_rules() if r.student_id in which]
        terms = {s.rules.semester_id for s in await self.snapshot.setups() if s.rules}
        held: dict[UUID, dict[UUID, list[HeldSection]]] = defaultdict(dict)
        for (student_id, semester_id), sections in (await self.snapshot.holdings()).items():
            if student_id in which:
                held[student_id][semester_id] = sections
        generation = uuid.uuid4().hex[:12]
        for i in range(0, len(chosen), STUDENTS_PER_ROUND):
            await asyncio.gather(
                *(
                    self.rules.load(
                        rules, {s: held[rules.student_id].get(s, []) for s in terms}, generation
                    )
                    for rules in chosen[i : i + STUDENTS_PER_ROUND]
                )
            )
        return len(chosen)

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
