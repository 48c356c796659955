"""How each fault test ends: the five invariants of DESIGN.md, checked in Redis and, after the
streams drain, in Postgres, and one printed line of what was counted."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from infrastructure.container import Container
from tests.faults.cluster import Deployment
from tests.faults.rush import Ledger, postgres_standing, redis_standing
from tests.integration.test_randomized import EventLog as RandomizedEventLog
from tests.invariants import check_postgres, check_redis


async def entries_added(container: Container) -> int:
    """Every entry ever appended to the shard streams (trimming does not lower it)."""
    total = 0
    for shard in range(container.keys.shards):
        stream = container.keys.stream(shard)
        if await container.redis.exists(stream):
            total += int((await container.redis.xinfo_stream(stream))["entries-added"])
    return total


async def applied_and_rows(database_url: str) -> tuple[int, int]:
    connection = await asyncpg.connect(database_url)
    try:
        applied = await connection.fetchval("SELECT coalesce(sum(applied), 0) FROM stream_offsets")
        rows = await connection.fetchval(
            "SELECT (SELECT count(*) FROM registrations) + (SELECT count(*) FROM waitlist)"
        )
    finally:
        await connection.close()
    return int(applied), int(rows)


class EventLog(RandomizedEventLog):
    """Every event published for the sections (subscribed before the first change), to
    replay each waitlist and prove that every freed seat went to the head of the line
    (test_randomized.EventLog.check_fifo, which knows holds, offers and claims)."""

    @contextlib.asynccontextmanager
    async def listening(
        self, container: Container, sections: Sequence[UUID]
    ) -> AsyncIterator[None]:
        pubsub = container.redis.pubsub()
        await pubsub.subscribe(*(container.keys.section_channel(s) for s in sections))
        confirmed = 0
        while confirmed < len(sections):
            message = await pubsub.get_message(timeout=5)
            confirmed += bool(message and message["type"] == "subscribe")
        await self.begin(container, sections)
        task = asyncio.create_task(self._read(pubsub))
        try:
            yield
            await self.completed(container)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await pubsub.aclose()

    async def _read(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            if message and message["type"] == "message":
                event = json.loads(message["data"])
                self.events.setdefault(event["s"], []).append(event)


@dataclass
class Figures:
    fault: str
    answers: int = 0
    pairs: int = 0
    rows: int = 0
    lost: int = 0
    oversold: int = 0
    duplicates: int = 0
    promotions: int | None = None
    added: int | None = None
    applied: int | None = None

    def line(self) -> str:
        extra = ""
        if self.promotions is not None:
            extra += f" fifo_seats_handed_over={self.promotions}"
        if self.added is not None:
            extra += f" stream_entries={self.added} applied={self.applied}"
        return (
            f"\nFAULT {self.fault}: answers={self.answers} pairs_checked={self.pairs} "
            f"rows={self.rows} lost={self.lost} oversold={self.oversold} "
            f"duplicates={self.duplicates}{extra}"
        )


async def lost_in_redis(deployed: Deployment, ledger: Ledger, sections: Sequence[UUID]) -> int:
    """Every answer a client was told is in Redis now (before any draining). During a rush
    the pairs with a request in flight while Redis is read are left out."""
    ledger.touched.clear()
    busy = {pair for pair, n in ledger.inflight.items() if n > 0}
    standing = await redis_standing(deployed.container, sections)
    lost = ledger.lost(standing, busy | ledger.touched)
    assert not lost, f"{len(lost)} answers not in Redis, e.g. {lost[:3]}"
    return len(lost)


async def settle_and_check(
    deployed: Deployment,
    fault: str,
    ledger: Ledger,
    sections: Sequence[UUID],
    events: EventLog | None = None,
    dead_letters: int = 0,
    exactly_once: bool = True,
) -> Figures:
    """No unexpected errors; every answer in Redis; drain; no oversell, one place per student,
    Redis equals Postgres (convergence, waitlist order), every answer in Postgres, each stream
    entry applied exactly once, FIFO from the events. Prints and returns the figures."""
    assert not ledger.internal, f"internal errors during the fault: {ledger.internal[:3]}"
    assert not ledger.surprises, f"unexpected refusals: {ledger.surprises[:3]}"
    container = deployed.container
    ids = list(sections)
    await lost_in_redis(deployed, ledger, ids)
    await deployed.drain()
    in_redis = await check_redis(container, ids)
    in_postgres = await check_postgres(container, deployed.database_url, ids)
    lost = ledger.lost(await postgres_standing(deployed.database_url))
    assert not lost, f"{len(lost)} acknowledged answers not in Postgres, e.g. {lost[:3]}"
    applied, rows = await applied_and_rows(deployed.database_url)
    figures = Figures(
        fault,
        answers=ledger.answers,
        pairs=len(ledger.last),
        rows=rows,
        lost=len(lost),
        oversold=in_redis["oversold"] + in_postgres["oversold"],
        duplicates=in_redis["duplicates"] + in_postgres["duplicates"],
    )
    if exactly_once:
        figures.added, figures.applied = await entries_added(container), applied
        assert figures.added == applied + dead_letters, "each stream entry applied exactly once"
    if events is not None:
        figures.promotions = events.check_fifo()
    print(figures.line())
    return figures
