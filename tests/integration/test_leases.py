"""Shard leases with epochs and the fences they give (domain/leases.py): the lease scripts
(acquire.lua, read_shard.lua, adopt.lua) against a real Redis, the epoch check of
PostgresChangeLog against a real Postgres, and a takeover's order (fence, then adopt)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from redis.typing import EncodableT, FieldT

from domain.changes import Change, ChangeKind, parse_position
from domain.leases import Fenced, Lease
from infrastructure.cli.worker import make_persister
from infrastructure.container import Container
from infrastructure.redis.keys import shard_of
from tests.conftest import Api, Catalog, Worker
from tests.integration.test_fencing import WatchedStream, running, shard_offsets
from tests.waiting import wait_until

LIFETIME = 10_000


def _entry(section_id: uuid.UUID, total: int = 5) -> dict[FieldT, EncodableT]:
    """A capacity change, as capacity.lua appends it."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    return {"k": "capacity", "s": str(section_id), "v": "99", "n": str(total), "at": str(now)}


async def _acquire(c: Container, shard: int, consumer: str, above: int = 0) -> Lease:
    lease = await c.stream.acquire(shard, consumer, LIFETIME, above)
    assert lease is not None, f"shard {shard} is held"
    return lease


async def _total_seats(database_url: str, section_id: uuid.UUID) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval(
                "SELECT total_seats FROM sections WHERE section_id = $1", section_id
            )
        )
    finally:
        await connection.close()


async def test_each_grant_of_a_shard_has_a_larger_epoch_and_only_its_holder_renews_it(
    api: Api,
) -> None:
    c = api.container
    first = await _acquire(c, 0, "a")
    assert (first.epoch, first.token) == (1, "a#1")
    assert await c.redis.get(c.keys.lease(0)) == "a#1"
    assert await c.stream.acquire(0, "b", LIFETIME) is None, "held: no second grant"
    assert (await _acquire(c, 1, "b")).epoch == 1, "each shard counts its own"
    await c.redis.delete(c.keys.lease(0))  # a's lease lapses
    second = await _acquire(c, 0, "b")
    assert (second.epoch, second.token) == (2, "b#2")
    assert not await c.stream.renew(first, LIFETIME)
    await c.stream.release(first)
    assert await c.redis.get(c.keys.lease(0)) == "b#2", "a cannot release b's lease"
    assert await c.stream.renew(second, LIFETIME)
    await c.stream.release(second)
    assert await c.redis.exists(c.keys.lease(0)) == 0


async def test_a_grant_exceeds_the_epoch_asked_when_redis_lost_its_counter(api: Api) -> None:
    """Redis restarted empty counts from 1 again; Postgres still holds the last owner's
    epoch, and a worker that met it asks for a grant above it."""
    c = api.container
    assert (await _acquire(c, 0, "a", above=41)).epoch == 42
    await c.redis.delete(c.keys.lease(0))
    assert (await _acquire(c, 0, "a", above=5)).epoch == 43, "never below the counter"


async def test_a_stale_worker_read_is_refused_and_the_owner_adopts_what_it_held(
    api: Api,
) -> None:
    """Invariant: once a worker's lease is gone it takes no entry of the shard, new or
    pending; the shard's new owner gets every one of them."""
    c = api.container
    section = uuid.uuid4()
    stream = c.keys.stream(0)
    await c.stream.prepare(0)
    await c.redis.xadd(stream, _entry(section))
    stale = await _acquire(c, 0, "a")
    (held,) = await c.stream.read(stale, 10, backlog=False, block_ms=0)
    await c.redis.delete(c.keys.lease(0))  # a's lease lapses; a goes on
    owner = await _acquire(c, 0, "b")
    newer = await c.redis.xadd(stream, _entry(section))
    for backlog in (False, True):
        with pytest.raises(Fenced) as refused:
            await c.stream.read(stale, 10, backlog=backlog, block_ms=0)
        assert refused.value.lease == stale and refused.value.current is None
    with pytest.raises(Fenced):
        await c.stream.adopt(stale)
    assert await c.stream.adopt(owner) == 1
    assert [x.id for x in await c.stream.read(owner, 10, backlog=True, block_ms=0)] == [held.id]
    assert [x.id for x in await c.stream.read(owner, 10, backlog=False, block_ms=0)] == [newer]


async def test_a_read_waits_for_an_entry_appended_while_it_waits(api: Api) -> None:
    """The wait after an empty read is a plain XREAD BLOCK from the id the script saw last:
    an entry appended while it blocks wakes it, long before the block ends, and is then
    taken through the group (so lag reporting counts it as pending)."""
    c = api.container
    await c.stream.prepare(0)
    lease = await _acquire(c, 0, "a")
    reading = asyncio.create_task(c.stream.read(lease, 10, backlog=False, block_ms=20_000))
    await wait_until(lambda: _blocked_in_xread(c), 15, "the read blocked in XREAD")
    added = await c.redis.xadd(c.keys.stream(0), _entry(uuid.uuid4()))
    (change,) = await asyncio.wait_for(reading, timeout=5)
    assert change.id == added
    pending = await c.redis.xpending(c.keys.stream(0), "persist")
    assert pending["pending"] == 1


async def _blocked_in_xread(c: Container) -> bool:
    clients = await c.redis.client_list()
    return any(x["cmd"] == "xread" and "b" in x["flags"] for x in clients)


def _capacity(section_id: uuid.UUID, entry_id: str, total: int) -> Change:
    return Change(
        id=entry_id,
        position=parse_position(entry_id),
        kind=ChangeKind.CAPACITY,
        section_id=section_id,
        version=99,
        at=datetime.now(UTC),
        total=total,
    )


async def test_a_batch_of_an_earlier_lease_is_refused_and_writes_nothing(
    api: Api, catalog: Catalog, settings
) -> None:
    """Invariant: once a lease took a shard over in Postgres, no batch (apply, apply_prefix,
    skip) of an earlier lease commits; and an epoch takes a shard over only once."""
    c = api.container
    section = await catalog.section(seats=5)
    earlier, later = Lease(3, "a", 1, "a#1"), Lease(3, "b", 2, "b#2")
    await c.changes.take_over(earlier)
    assert await c.changes.apply(earlier, [_capacity(section.id, "1-0", 6)]) == 1
    await c.changes.take_over(later)
    late = _capacity(section.id, "2-0", 7)
    for refused_batch in (
        lambda: c.changes.apply(earlier, [late]),
        lambda: c.changes.apply_prefix(earlier, [late]),
        lambda: c.changes.skip(earlier, late),
    ):
        with pytest.raises(Fenced) as refused:
            await refused_batch()
        assert refused.value.current == 2
    for again in (earlier, later):
        with pytest.raises(Fenced):
            await c.changes.take_over(again)
    offsets = await shard_offsets(settings.database_url, 3)
    assert offsets is not None
    assert (offsets["epoch"], offsets["last_id"], offsets["applied"]) == (2, "1-0", 1)
    assert await _total_seats(settings.database_url, section.id) == 6
    assert await c.changes.apply(later, [late]) == 1


async def test_a_takeover_fences_the_shard_before_it_adopts(
    api: Api, catalog: Catalog, settings
) -> None:
    """Invariant: when the new owner adopts (XAUTOCLAIM, min idle 0) the shard's epoch in
    Postgres is already its own, so the entries it takes belong to a worker that can no
    longer commit them; that worker's late batch is refused and each entry lands once."""
    c = api.container
    section = await catalog.section(seats=5)
    shard = shard_of(section.id, c.keys.shards)
    for total in (6, 7):
        await c.redis.xadd(c.keys.stream(shard), _entry(section.id, total))
    stale = await _acquire(c, shard, "a")
    await c.changes.take_over(stale)
    await c.stream.prepare(shard)
    held = await c.stream.read(stale, 10, backlog=False, block_ms=0)
    assert len(held) == 2
    await c.redis.delete(c.keys.lease(shard))  # a's lease lapses mid-batch

    seen: list[tuple[int, int]] = []

    async def epoch_in_postgres(lease: Lease) -> None:
        offsets = await shard_offsets(settings.database_url, shard)
        seen.append((lease.epoch, offsets["epoch"] if offsets else 0))

    owner = make_persister(c, "b")
    watched = WatchedStream(owner.stream, shard)
    watched.before_adopt = epoch_in_postgres
    owner.stream = watched
    async with running(owner):
        await Worker(owner, c).drain()
    assert seen and all(mine == stored and mine > stale.epoch for mine, stored in seen), seen
    with pytest.raises(Fenced):
        await c.changes.apply(stale, held)
    offsets = await shard_offsets(settings.database_url, shard)
    assert offsets is not None and offsets["applied"] == 2
    assert watched.acked == [x.id for x in held]
