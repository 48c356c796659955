"""The pub/sub hub behind subscriptions, on a real Redis: one connection per process, one
SUBSCRIBE per channel, concurrent first subscribers, resync after a reconnect, slow
subscribers coalesced or bounded. (The cases broadcaster 0.3.1 gets wrong: DESIGN.md.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from domain.live import RESYNC, Standing, WaitlistStatus, WaitlistWatch
from infrastructure.container import make_redis
from infrastructure.redis.client import RedisClient
from infrastructure.redis.events import decode_section_event
from infrastructure.redis.hub import RedisHub
from infrastructure.settings import Settings
from tests.client import registered
from tests.conftest import Api, Catalog
from tests.servers import serve, ws_url
from tests.waiting import wait_until
from tests.wsclient import SEAT_UPDATES, GqlSocket


class Recorder:
    """A listener that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.resyncs = 0

    def deliver(self, channel: str, event: Any) -> None:
        self.events.append(event)

    def resync(self) -> None:
        self.resyncs += 1


@contextlib.asynccontextmanager
async def running_hub(settings: Settings) -> AsyncIterator[tuple[RedisHub, Redis]]:
    redis = make_redis(settings)
    assert isinstance(redis, Redis), "the hub's own tests run on one Redis server"
    hub = RedisHub(redis, lambda channel, data: data, name=f"test-hub-{uuid.uuid4().hex[:8]}")
    await hub.start([f"{settings.key_prefix}held"])
    try:
        yield hub, redis
    finally:
        await hub.stop()
        await redis.aclose(close_connection_pool=True)


async def hub_connections(redis: RedisClient, name: str) -> list[dict[str, Any]]:
    return [c for c in await redis.client_list(_type="pubsub") if c["name"] == name]


async def subscriptions(redis: RedisClient, channel: str) -> int:
    return int((await redis.pubsub_numsub(channel))[0][1])


@pytest.mark.parametrize("clients", [2, 50])
async def test_clients_joining_a_new_channel_at_the_same_moment_all_receive_its_events(
    settings: Settings, clients: int
) -> None:
    async with running_hub(settings) as (hub, redis):
        channel = f"{settings.key_prefix}new:{uuid.uuid4()}"
        listeners = [Recorder() for _ in range(clients)]
        await asyncio.gather(*(hub.add(listener, [channel]) for listener in listeners))
        assert await subscriptions(redis, channel) == 1
        await redis.publish(channel, "first")
        await wait_until(
            lambda: all(listener.events == ["first"] for listener in listeners),
            5,
            "every listener got the event",
        )
        assert len(await hub_connections(redis, hub.name)) == 1


async def test_the_last_listener_leaving_unsubscribes_and_a_rejoin_subscribes_again(
    settings: Settings,
) -> None:
    async with running_hub(settings) as (hub, redis):
        channel = f"{settings.key_prefix}churn"
        first, second = Recorder(), Recorder()
        await hub.add(first, [channel])
        await hub.remove(first, [channel])
        await hub.add(second, [channel])
        assert await subscriptions(redis, channel) == 1
        await redis.publish(channel, "x")
        await wait_until(lambda: second.events == ["x"], 5, "the rejoined listener got the event")
        await hub.remove(second, [channel])
        await wait_until(lambda: hub.channel_count == 1, 5, "only the catalog channel subscribed")
        assert first.events == []


async def test_a_waitlist_watch_that_falls_behind_keeps_a_bounded_queue_then_resyncs(
    settings: Settings,
) -> None:
    async with running_hub(settings) as (hub, redis):
        hub.decode = lambda channel, data: decode_section_event(data)
        section = uuid.uuid4()
        channel = f"{settings.key_prefix}section:{section}"
        watch = WaitlistWatch(uuid.uuid4(), Standing(WaitlistStatus.WAITING, 50, 0), limit=16)
        counter = Recorder()
        await hub.add(watch, [channel])
        await hub.add(counter, [channel])
        await publish_seat_events(redis, channel, section, range(1, 1001))
        await wait_until(lambda: len(counter.events) == 1000, 5, "all 1000 events delivered")
        assert watch._queue.qsize() <= 16
        assert await watch.next() is RESYNC


async def publish_seat_events(
    redis: RedisClient, channel: str, section: uuid.UUID, versions: Any
) -> None:
    """Events shaped as register.lua publishes them, without touching seat state."""
    pipe = redis.pipeline(transaction=False)
    for version in versions:
        event = {"s": str(section), "v": version, "a": 0, "t": 5, "w": version, "k": "join"}
        pipe.publish(channel, json.dumps(event | {"u": str(uuid.uuid4())}))
    await pipe.execute()


async def test_one_pubsub_connection_per_process_and_one_subscribe_per_channel(
    api: Api, catalog: Catalog, server: str
) -> None:
    sections = [await catalog.section(seats=5) for _ in range(3)]
    hub = api.container.hub
    assert hub is not None
    redis = api.container.redis
    async with contextlib.AsyncExitStack() as stack:
        for n in range(30):
            ws = await stack.enter_async_context(GqlSocket.open(ws_url(server)))
            ids = [str(sections[n % 3].id), str(sections[(n + 1) % 3].id)]
            await ws.data(await ws.subscribe(SEAT_UPDATES, ids=ids))
        channels = [api.container.keys.section_channel(s.id) for s in sections]
        assert [await subscriptions(redis, c) for c in channels] == [1, 1, 1]
        assert len(await hub_connections(redis, hub.name)) == 1
        assert hub.channel_count == 1 + 3  # the catalog channel and the three sections
        assert hub.listener_count == 1 + 30 * 2  # per channel: its subscriptions' listeners
    await wait_until(lambda: hub.channel_count == 1, 5, "only the catalog channel subscribed")
    assert [await subscriptions(redis, c) for c in channels] == [0, 0, 0]


async def test_fifty_websocket_clients_joining_a_new_section_at_once_all_get_its_changes(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=5)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(GqlSocket.open(ws_url(server))) for _ in range(50)
        ]
        ops = await asyncio.gather(
            *(ws.subscribe(SEAT_UPDATES, ids=[str(section.id)]) for ws in sockets)
        )
        for ws, op in zip(sockets, ops, strict=True):
            assert (await ws.data(op))["availableSeats"] == 5
        await registered(api, await catalog.student(), section)
        for ws, op in zip(sockets, ops, strict=True):
            assert (await ws.data(op))["availableSeats"] == 4


async def kill_hub_connection(api: Api) -> None:
    hub = api.container.hub
    assert hub is not None
    redis = api.container.redis
    (connection,) = await hub_connections(redis, hub.name)
    await redis.execute_command("CLIENT", "KILL", "ID", connection["id"])


async def test_after_a_redis_reconnect_every_live_subscription_resends_a_fresh_snapshot(
    api: Api, catalog: Catalog, server: str
) -> None:
    """Pub/sub is at-most-once: a change published while the hub was away is lost as an
    event, so every subscription sends every section again, current."""
    a, b = await catalog.section(seats=5), await catalog.section(seats=5)
    student = await catalog.student()
    ids = [str(a.id), str(b.id)]
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(GqlSocket.open(ws_url(server))) for _ in range(5)
        ]
        ops = [await ws.subscribe(SEAT_UPDATES, ids=ids) for ws in sockets]
        for ws, op in zip(sockets, ops, strict=True):
            before = {(await ws.data(op))["sectionId"] for _ in ids}
            assert before == set(ids)
        await kill_hub_connection(api)
        await registered(api, student, a)  # published while the hub reconnects
        for ws, op in zip(sockets, ops, strict=True):
            snapshot: dict[str, dict[str, Any]] = {}
            while len(snapshot) < 2 or snapshot[str(a.id)]["availableSeats"] != 4:
                update = await ws.data(op, timeout=5)
                snapshot[update["sectionId"]] = update
            assert snapshot[str(b.id)]["availableSeats"] == 5
    hub = api.container.hub
    assert hub is not None and hub.reconnects == 1


# Aliases (as many as the query limits allow) make each push about 1 KB, uncompressed, so
# the socket buffers hold few.
WIDE_SEAT_UPDATES = (
    "subscription($ids: [UUID!]!) { seatUpdates(sectionIds: $ids) { version "
    + " ".join(f"f{n}: sectionId" for n in range(20))
    + " } }"
)


async def test_a_slow_seat_subscriber_gets_the_latest_state_not_a_backlog_and_slows_no_one(
    api: Api, catalog: Catalog
) -> None:
    """A client that stops reading fills its socket; from then on its subscription keeps
    only the newest state of the section, while a reading client gets every change."""
    section = await catalog.section(seats=5)
    channel = api.container.keys.section_channel(section.id)
    # What the slow client still gets is bounded, not a share of the changes: its socket
    # buffers' worth plus at most two fills of its queue (64): 600 changes gave 88 or 152
    # pushes, 1,200 gave 112 (6 runs each); a backlog would be every change.
    changes = 1200
    async with serve(api.app, send_buffer=4096) as url:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        async with (
            GqlSocket.open(ws_url(url), compression=None) as fast,
            GqlSocket.open(ws_url(url), sock=stalled, max_queue=4, compression=None) as slow,
        ):
            fast_op = await fast.subscribe(WIDE_SEAT_UPDATES, ids=[str(section.id)])
            slow_op = await slow.subscribe(WIDE_SEAT_UPDATES, ids=[str(section.id)])
            start = (await fast.data(fast_op))["version"]
            assert (await slow.data(slow_op))["version"] == start
            slow.pause()
            publishing = asyncio.create_task(
                paced(api.container.redis, channel, section, start, changes)
            )
            received = [start]
            while received[-1] < start + changes:
                received.append((await fast.data(fast_op, timeout=2))["version"])
            await publishing
            slow.resume()
            versions: list[int] = []
            while not versions or versions[-1] < start + changes:
                versions.append((await slow.data(slow_op, timeout=5))["version"])
    assert versions == sorted(set(versions))
    print(f"\nslow subscriber: {len(versions)} pushes, fast: {len(received) - 1}, of {changes}")
    assert len(received) > changes * 0.8, "the reading client got (nearly) every change"
    assert len(versions) < changes / 4, f"{len(versions)} pushes: a backlog, not coalesced"


async def paced(
    redis: RedisClient, channel: str, section: Any, start: int, changes: int = 600
) -> None:
    """One change every 2 ms: slower than a reading client drains them."""
    for version in range(start + 1, start + changes + 1):
        await publish_seat_events(redis, channel, section.id, [version])
        await asyncio.sleep(0.002)
