"""Two workers that both believe they own a shard (review F6, issue 12 finding 6).

The steps of the race are driven one at a time: each worker's calls pass through
turnstiles the test opens in the order of the interleaving, instead of hoping load
produces it. The wrappers are test seams around the real adapters; the persisters, the
scripts, Redis and Postgres are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from infrastructure.cli.worker import make_persister
from infrastructure.redis.keys import shard_of
from tests.client import REGISTER, registered
from tests.conftest import Api, Catalog, Worker
from tests.invariants import Answers, check_answers_persisted, check_postgres
from tests.waiting import wait_until
from workers.persister import Persister


def shard_called(args: tuple[Any, ...]) -> int:
    """The shard of a ChangeLog or ChangeStream call: its first argument, a shard or a lease."""
    first = args[0]
    return first if isinstance(first, int) else int(first.shard)


class Turnstile:
    """Calls wait here until the test lets them through one by one, or opens it for good."""

    def __init__(self, closed: bool = True) -> None:
        self.waiting = 0
        self._passes = asyncio.Semaphore(0)
        self._open = not closed

    async def through(self) -> None:
        if self._open:
            return
        self.waiting += 1
        try:
            await self._passes.acquire()
        finally:
            self.waiting -= 1

    def let_one(self) -> None:
        self._passes.release()

    def close(self) -> None:
        self._open = False

    def open(self) -> None:
        self._open = True
        for _ in range(self.waiting):
            self._passes.release()


class HeldChangeLog:
    """A worker's ChangeLog whose batches of one shard wait at a turnstile before their
    transaction begins, and which records what each batch came to."""

    def __init__(self, inner: Any, shard: int) -> None:
        self.inner, self.shard = inner, shard
        self.turnstile = Turnstile()
        self.outcomes: list[int | BaseException] = []  # applied count, or the refusal

    async def apply(self, *args: Any) -> int:
        if shard_called(args) != self.shard:
            return int(await self.inner.apply(*args))
        await self.turnstile.through()
        try:
            applied = int(await self.inner.apply(*args))
        except Exception as exc:
            self.outcomes.append(exc)
            raise
        self.outcomes.append(applied)
        return applied

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class WatchedStream:
    """A worker's ChangeStream: records what it acknowledges and adopts in one shard, and
    can hold its reads there at a turnstile (open unless closed)."""

    def __init__(self, inner: Any, shard: int) -> None:
        self.inner, self.shard = inner, shard
        self.reads = Turnstile(closed=False)
        self.acked: list[str] = []
        self.before_adopt: Callable[[Any], Awaitable[None]] | None = None  # given the lease

    async def read(self, *args: Any) -> Any:
        if shard_called(args) == self.shard:
            await self.reads.through()
        return await self.inner.read(*args)

    async def adopt(self, *args: Any) -> int:
        if shard_called(args) == self.shard and self.before_adopt is not None:
            await self.before_adopt(args[0])
        return int(await self.inner.adopt(*args))

    async def ack(self, shard: int, changes: Sequence[Any]) -> None:
        await self.inner.ack(shard, changes)
        if shard == self.shard:
            self.acked.extend(c.id for c in changes)

    def acked_through(self, entry_id: str) -> bool:
        return bool(self.acked) and self.acked[-1] == entry_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@contextlib.asynccontextmanager
async def running(persister: Persister) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await task


async def shard_offsets(database_url: str, shard: int) -> asyncpg.Record | None:
    """The shard's row of stream_offsets (its watermark and lease epoch)."""
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchrow("SELECT * FROM stream_offsets WHERE shard = $1", shard)
    finally:
        await connection.close()


async def test_two_owners_of_one_shard_lose_nothing_and_apply_nothing_twice(
    api: Api, catalog: Catalog, settings: Any
) -> None:
    """Finding 6. Invariant: every acknowledged answer reaches Postgres exactly once
    (entries applied == entries appended, registrations == answers) although worker A
    goes on working a shard after its lease lapsed: A is paused mid-batch with its lease
    loop stalled (an inline sweep that does not return), B takes the shard over, reads and
    commits later entries, then A resumes. A's commit must be refused and A must
    acknowledge nothing; before the fix A's late batch was filtered as already applied
    (B's watermark was past it), acknowledged and trimmed: lost."""
    c = api.container
    section = await catalog.section(seats=3)
    shard = shard_of(section.id, c.keys.shards)
    stream_key = c.keys.stream(shard)
    students = iter(await catalog.students(6))
    answers = Answers()

    async def register(count: int) -> None:
        for _ in range(count):
            student = next(students)
            (result,) = await registered(api, student, section)
            answers.record(student.id, uuid.UUID(result["sectionId"]), result["outcome"])

    sweep_stalled = asyncio.Event()

    async def stalled_sweep(shards: Sequence[int]) -> int:
        await sweep_stalled.wait()
        return 0

    a = make_persister(c, "worker-a")
    a_log, a_stream = HeldChangeLog(a.changes, shard), WatchedStream(a.stream, shard)
    a.changes, a.stream, a.sweep = a_log, a_stream, stalled_sweep
    b = make_persister(c, "worker-b")
    b_stream = WatchedStream(b.stream, shard)
    b.stream = b_stream

    await register(2)  # first entries: A's batch
    async with running(a) as stop_a:
        try:
            # 1. A owns the shard and is paused mid-batch; its balance loop is stuck in the sweep.
            await wait_until(lambda: a_log.turnstile.waiting == 1, 15, "A paused mid-batch")
            # 2. A's lease lapses; A cannot notice.
            await c.redis.delete(c.keys.lease(shard))
            async with running(b):
                # 3. B takes the shard over, adopts A's batch and commits it.
                first = (await c.redis.xinfo_stream(stream_key))["last-generated-id"]
                await wait_until(lambda: b_stream.acked_through(first), 15, "B committed A's batch")
                # ...then waits before its next read.
                b_stream.reads.close()
                await wait_until(
                    lambda: b_stream.reads.waiting == 1, 15, "B waiting before its next read"
                )
                # 4. A resumes its batch.
                a_log.turnstile.let_one()
                await wait_until(lambda: len(a_log.outcomes) == 1, 15, "A finished its batch")
                # 5. New entries: A, if it still reads the shard, takes them and pauses again.
                await register(2)
                a_refused = isinstance(a_log.outcomes[0], BaseException)
                await wait_until(
                    lambda: a_refused or a_log.turnstile.waiting == 1,
                    15,
                    "A refused or paused again",
                )
                # 6. More entries; B reads and commits past all of them.
                await register(2)
                last = (await c.redis.xinfo_stream(stream_key))["last-generated-id"]
                b_stream.reads.open()
                await wait_until(
                    lambda: b_stream.acked_through(last), 15, "B committed past every entry"
                )
                # 7. A's second batch, if it has one, goes on.
                a_log.turnstile.open()
                await wait_until(lambda: a_log.turnstile.waiting == 0, 15, "A's second batch done")
                await Worker(b, c).drain()
        finally:  # a failed step must not leave A stuck in its sweep or at a gate
            stop_a.set()
            sweep_stalled.set()
            a_log.turnstile.open()
            b_stream.reads.open()

    await check_answers_persisted(settings.database_url, answers)
    offsets = await shard_offsets(settings.database_url, shard)
    added = int((await c.redis.xinfo_stream(stream_key))["entries-added"])
    assert offsets is not None and offsets["applied"] == added, (
        f"{added} entries appended, {offsets and offsets['applied']} applied"
    )
    await check_postgres(c, settings.database_url, [section.id])
    assert a_stream.acked == [], "A acknowledged entries after its lease lapsed"
    assert a_refused and type(a_log.outcomes[0]).__name__ == "Fenced", a_log.outcomes
    assert len(a_log.outcomes) == 1, "A read no entries after its lease lapsed"


async def test_a_shard_whose_epoch_redis_forgot_is_taken_over_above_postgres(
    api: Api, catalog: Catalog, settings: Any
) -> None:
    """Redis restarted empty counts lease epochs from 1 again while Postgres holds the last
    owner's (here 41). The worker's first take-over is refused; it hands the lease back,
    takes the shard again above 41 and persists it: the fence does not wedge the shard."""
    c = api.container
    section = await catalog.section(seats=3)
    shard = shard_of(section.id, c.keys.shards)
    connection = await asyncpg.connect(settings.database_url)
    try:
        await connection.execute(
            "INSERT INTO stream_offsets (shard, last_id, epoch) VALUES ($1, '0-0', 41)", shard
        )
    finally:
        await connection.close()
    student = await catalog.student()
    body = await api.gql(
        REGISTER,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionIds": [str(section.id)]},
    )
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    worker = make_persister(c, "worker-after-restart")
    async with running(worker):
        await Worker(worker, c).drain()
    offsets = await shard_offsets(settings.database_url, shard)
    added = int((await c.redis.xinfo_stream(c.keys.stream(shard)))["entries-added"])
    assert offsets is not None and offsets["epoch"] == 42
    assert offsets["applied"] == added
