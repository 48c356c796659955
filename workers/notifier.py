"""The notifier: delivers the outbox the persister writes (domain/notifications.py), beside
the persister in each worker process.

Work is divided by row claims, not by shard leases: each worker claims due deliveries in
Postgres (FOR UPDATE SKIP LOCKED, infrastructure/postgres/notifications.py), stamps them with
its claim token and a lease longer than a send may take, sends, and records the outcome only
under its own token. Deliveries need no order among themselves (each carries its event's
time), so any worker may take any row: a slow SMTP server or webhook never holds up the
rest of a shard, and the work spreads over however many workers run. The claim plays the
lease's part: two live workers never hold one row, and a worker that dies mid-send leaves the
row to the next claim once its lease lapses, so that one send may be repeated, with the
same event id (the guarantee stated in domain/notifications.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from domain.notifications import Channel, Delivery, Outbox, retry_delay
from workers.persister import Backoff, until_stopped

log = logging.getLogger(__name__)

# A claim outlasts a send's timeout twice over, plus this: recording the outcome included.
LEASE_MARGIN_SECONDS = 5.0


class DeliveryObserver(Protocol):
    def sent(self, delivery: Delivery, lag_seconds: float) -> None: ...

    def retried(self, delivery: Delivery) -> None: ...

    def dead(self, delivery: Delivery) -> None: ...


class Quiet:
    def sent(self, delivery: Delivery, lag_seconds: float) -> None:
        pass

    def retried(self, delivery: Delivery) -> None:
        pass

    def dead(self, delivery: Delivery) -> None:
        pass


@dataclass(slots=True)
class NotifierStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    lost_claims: int = 0


@dataclass
class Notifier:
    outbox: Outbox
    channel: Channel
    timeout: float = 10.0
    retry_first: float = 30.0
    retry_cap: float = 3600.0
    max_attempts: int = 20
    poll: float = 0.5
    concurrency: int = 20
    observer: DeliveryObserver = field(default_factory=Quiet)
    stats: NotifierStats = field(default_factory=NotifierStats)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def lease_seconds(self) -> float:
        return 2 * self.timeout + LEASE_MARGIN_SECONDS

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop`; the sends in flight then finish and are recorded.
        Claims come in batches (one query each), once half the slots are free."""
        backoff = Backoff(stop, first=0.2)
        try:
            while not stop.is_set():
                await self._wait_for_room(stop)
                if stop.is_set():
                    break
                free = self.concurrency - len(self._inflight)
                try:
                    claimed = await self.outbox.claim(free, self.lease_seconds)
                    backoff.reset()
                except Exception as exc:  # Postgres away: the rows wait for it
                    log.warning("notifier: claiming failed: %s", exc)
                    await backoff.wait()
                    continue
                for delivery in claimed:
                    task = asyncio.create_task(self.deliver(delivery))
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
                if len(claimed) < free:  # nothing more due now
                    await until_stopped(stop, asyncio.sleep(self.poll))
        finally:
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _wait_for_room(self, stop: asyncio.Event) -> None:
        """Until at least half the slots are free."""
        while (self.concurrency - len(self._inflight)) * 2 < self.concurrency:
            busy = set(self._inflight)
            if stop.is_set() or not busy:
                return
            await until_stopped(stop, asyncio.wait(busy, return_when=asyncio.FIRST_COMPLETED))

    async def deliver(self, delivery: Delivery) -> None:
        """Send one claimed delivery and record the outcome under its claim."""
        try:
            await asyncio.wait_for(self.channel.send(delivery), self.timeout)
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                error = f"timed out after {self.timeout:g} s"
            await self._failed(delivery, error)
            return
        lag = (datetime.now(UTC) - delivery.occurred_at).total_seconds()
        if await self._record(delivery, lambda: self.outbox.sent(delivery)):
            self.stats.sent += 1
            self.observer.sent(delivery, lag)

    async def _failed(self, delivery: Delivery, error: str) -> None:
        if delivery.attempts >= self.max_attempts:
            if await self._record(delivery, lambda: self.outbox.failed(delivery, error, None)):
                self.stats.dead += 1
                self.observer.dead(delivery)
                log.error(
                    "notification %s to %s dead after %d attempts: %s",
                    delivery.event_id,
                    delivery.channel,
                    delivery.attempts,
                    error,
                )
            return
        delay = retry_delay(delivery.attempts, self.retry_first, self.retry_cap)
        if await self._record(delivery, lambda: self.outbox.failed(delivery, error, delay)):
            self.stats.retried += 1
            self.observer.retried(delivery)
            log.warning(
                "notification %s to %s failed (attempt %d), again in %.1f s: %s",
                delivery.event_id,
                delivery.channel,
                delivery.attempts,
                delay,
                error,
            )

    async def _record(self, delivery: Delivery, write: Callable[[], Awaitable[bool]]) -> bool:
        """Write an outcome, retried while Postgres is away, within the claim's lease (after
        it the row is another worker's to send again). False if the claim was lost."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_seconds
        backoff = Backoff(first=0.1, cap=2.0)
        while True:
            try:
                if await write():
                    return True
                self.stats.lost_claims += 1
                log.warning(
                    "notification %s to %s: claim lost before its outcome was recorded",
                    delivery.event_id,
                    delivery.channel,
                )
                return False
            except Exception as exc:
                if loop.time() > deadline:
                    log.error("notification %s: recording failed: %s", delivery.event_id, exc)
                    return False
                with contextlib.suppress(Exception):
                    await backoff.wait()
