"""The persister: shard streams -> Postgres.

Workers divide the shards among themselves by short leases (like Kafka partitions in a
consumer group): each shard is read in stream order by one worker at a time, which writes
a batch in one transaction and acknowledges it after the commit. A worker that dies stops
renewing its leases; another takes the shards over and adopts their pending entries.

A worker that only stalled may go on working a shard after its lease lapsed. Each lease
has an epoch: the new owner raises the shard's epoch in Postgres before it adopts or reads
anything, reads are refused in Redis without the lease, and a batch commits only under
the shard's epoch. A worker that meets the fence (Fenced) stops that shard's consumer and
acknowledges nothing; the new owner has adopted what it held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from domain.changes import Change
from domain.errors import Unavailable
from domain.leases import Fenced, Lease
from domain.ports import ChangeLog, ChangeStream

log = logging.getLogger(__name__)
T = TypeVar("T")

BALANCE_SECONDS = 1.0
BLOCK_MS = 1_000
MAX_BACKOFF = 5.0


async def until_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """The result of `work`, or None (work cancelled) if `stop` is set first."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


@dataclass(slots=True)
class Backoff:
    """Exponential, capped, with jitter; reset after a success. Waiting ends early when
    the worker is asked to stop."""

    stop: asyncio.Event = field(default_factory=asyncio.Event)
    first: float = 0.05
    cap: float = MAX_BACKOFF
    current: float = 0.0

    async def wait(self) -> None:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        await until_stopped(self.stop, asyncio.sleep(self.current * random.uniform(0.5, 1.0)))

    def reset(self) -> None:
        self.current = 0.0


@dataclass(slots=True)
class Stats:
    applied: int = 0
    dead_lettered: int = 0


@dataclass
class Persister:
    stream: ChangeStream
    changes: ChangeLog
    shards: int
    consumer: str
    batch: int = 1000
    max_attempts: int = 5
    lease_ms: int = 10_000
    # Settles what died half-way in the owned shards (domain/promotion.py Promoter.sweep).
    sweep: Callable[[Sequence[int]], Awaitable[int]] | None = None
    stats: Stats = field(default_factory=Stats)
    _tasks: dict[int, asyncio.Task[None]] = field(default_factory=dict)
    _releasing: dict[int, asyncio.Event] = field(default_factory=dict)
    _leases: dict[int, Lease] = field(default_factory=dict)
    # Per shard, the epoch Postgres was last seen to hold: a lease taken anew must exceed
    # it (Redis's epoch counter starts again below it if Redis loses its data).
    _epochs: dict[int, int] = field(default_factory=dict)

    @property
    def owned(self) -> list[int]:
        return sorted(self._tasks)

    async def run(self, stop: asyncio.Event) -> None:
        """Balance leases and consume owned shards until `stop` is set, then finish the
        batches in hand, acknowledge them and hand the shards back."""
        backoff = Backoff(stop, first=0.2)
        try:
            while not stop.is_set():
                try:
                    await self._balance()
                    backoff.reset()
                except Exception as exc:  # Redis away: keep trying, leases lapse meanwhile
                    log.warning("lease balancing failed: %s", exc)
                    await backoff.wait()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), BALANCE_SECONDS)
        finally:
            await self._stop_all()

    async def _balance(self) -> None:
        live = await self.stream.heartbeat(self.consumer, self.lease_ms)
        share = math.ceil(self.shards / max(len(live), 1))
        for shard in list(self._tasks):
            if self._tasks[shard].done():  # fenced or failed: hand back, take again anew
                await self._drop(shard, release=True)
            elif not await self.stream.renew(self._leases[shard], self.lease_ms):
                await self._drop(shard, release=False)
        extra = len(self._tasks) - share
        for shard in self.owned[len(self.owned) - extra :] if extra > 0 else []:
            await self._drop(shard, release=True)
        free = [s for s in range(self.shards) if s not in self._tasks]
        random.shuffle(free)
        for shard in free:
            if len(self._tasks) >= share:
                break
            above = self._epochs.get(shard, 0)
            lease = await self.stream.acquire(shard, self.consumer, self.lease_ms, above)
            if lease is not None:
                self._start(lease)
        if self.sweep is not None and self._tasks:
            try:
                await self.sweep(self.owned)
            except Exception as exc:  # a sweep that failed is simply tried next round
                log.warning("sweeping shards %s failed: %s", self.owned, exc)

    def _start(self, lease: Lease) -> None:
        stop = asyncio.Event()
        shard = lease.shard
        self._releasing[shard] = stop
        self._leases[shard] = lease
        self._tasks[shard] = asyncio.create_task(self._consume(lease, stop), name=f"shard-{shard}")
        log.info("worker %s took shard %d at epoch %d", self.consumer, shard, lease.epoch)

    async def _drop(self, shard: int, release: bool) -> None:
        """Stop consuming a shard after its batch in hand; hand the lease back if asked."""
        self._releasing.pop(shard).set()
        lease = self._leases.pop(shard)
        task = self._tasks.pop(shard)  # its loop sees the event within one read's block time
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=30)
        if release:
            with contextlib.suppress(Exception):
                await self.stream.release(lease)

    async def _stop_all(self) -> None:
        await asyncio.gather(*(self._drop(shard, release=True) for shard in list(self._tasks)))
        with contextlib.suppress(Exception):
            await self.stream.leave(self.consumer)

    async def _consume(self, lease: Lease, stop: asyncio.Event) -> None:
        """Take the shard over, then persist it until stopped or fenced off."""
        try:
            if await self._take_over(lease, stop):
                await self._read_and_persist(lease, stop)
        except Fenced as fenced:
            if fenced.current is not None:
                self._epochs[lease.shard] = max(self._epochs.get(lease.shard, 0), fenced.current)
            log.warning("worker %s stops: %s", self.consumer, fenced)

    async def _take_over(self, lease: Lease, stop: asyncio.Event) -> bool:
        """Fence the shard's earlier owners off in Postgres, before adopting what they
        held; retried while Postgres is away. False if stopped first."""
        backoff = Backoff(stop)
        while not stop.is_set():
            try:
                await self.changes.take_over(lease)
                return True
            except Unavailable as exc:  # nothing could be committed meanwhile anyway
                log.warning(
                    "shard %d: database unavailable (%s); taking over later",
                    lease.shard,
                    exc.__cause__,
                )
            except Fenced:
                raise
            except Exception as exc:
                log.warning("shard %d: taking over failed (%r); retrying", lease.shard, exc)
            await backoff.wait()
        return False

    async def _read_and_persist(self, lease: Lease, stop: asyncio.Event) -> None:
        backoff = Backoff(stop)
        backlog = True
        while not stop.is_set():
            try:
                if backlog:
                    await self.stream.prepare(lease.shard)
                    await self.stream.adopt(lease)
                read = self.stream.read(lease, self.batch, backlog, BLOCK_MS)
                changes = await until_stopped(stop, read)
                if changes is None:
                    return  # stopped while waiting: whatever was delivered stays pending
                backoff.reset()
            except Fenced:
                raise
            except Exception as exc:  # Redis away or its data lost: start over from the backlog
                log.warning("reading shard %d failed: %s", lease.shard, exc)
                backlog = True
                await backoff.wait()
                continue
            if not changes:
                backlog = False
                continue
            await self.persist(lease, changes, stop)

    async def persist(
        self, lease: Lease, changes: Sequence[Change], stop: asyncio.Event | None = None
    ) -> None:
        """Write a batch, retrying while Postgres is away; isolate a change that fails.
        A stop request during the retries leaves the batch pending for the next owner;
        so does Fenced, which this raises once another worker took the shard over."""
        backoff = Backoff(stop or asyncio.Event())
        pending = list(changes)
        while pending and not backoff.stop.is_set():
            try:
                applied = await self.changes.apply(lease, pending)
            except Unavailable as exc:
                log.warning(
                    "shard %d: database unavailable (%s); retrying", lease.shard, exc.__cause__
                )
                await backoff.wait()
                continue
            except Fenced:
                raise
            except Exception as exc:
                log.warning(
                    "shard %d: batch of %d failed (%s); isolating", lease.shard, len(pending), exc
                )
                pending = await self._isolate(lease, pending, backoff)
                continue
            await self._ack(lease.shard, pending)
            self.stats.applied += applied
            return

    async def _isolate(self, lease: Lease, changes: list[Change], backoff: Backoff) -> list[Change]:
        """Commit the changes before the failing one; count the failing one's attempts and
        dead-letter it after max_attempts. Returns what is left to write."""
        shard = lease.shard
        try:
            _, failed, error = await self.changes.apply_prefix(lease, changes)
        except Unavailable:
            await backoff.wait()
            return changes
        done = changes if failed is None else changes[: changes.index(failed)]
        await self._ack(shard, done)
        if failed is None:
            return []
        attempts = await self.stream.count_attempt(shard, failed)
        if attempts < self.max_attempts:
            log.warning(
                "shard %d: change %s failed %d time(s): %s", shard, failed.id, attempts, error
            )
            await backoff.wait()
            return changes[len(done) :]
        log.error(
            "shard %d: change %s dead-lettered after %d attempts: %s",
            shard,
            failed.id,
            attempts,
            error,
            extra={"request_id": failed.request_id or "-", "shard": shard},
        )
        await self.stream.dead_letter(shard, failed, repr(error))
        await self.changes.skip(lease, failed)
        await self._ack(shard, [failed])
        self.stats.dead_lettered += 1
        return changes[len(done) + 1 :]

    async def _ack(self, shard: int, changes: Sequence[Change]) -> None:
        """Acknowledge committed changes. Until it succeeds they would only be replayed
        (and skipped by the watermark), so keep trying rather than move on."""
        backoff = Backoff()
        while True:
            try:
                await self.stream.ack(shard, changes)
                return
            except Exception as exc:
                log.warning("shard %d: acknowledging failed (%s); retrying", shard, exc)
                await backoff.wait()
