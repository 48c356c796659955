"""One Redis pub/sub connection per process, shared by every subscriber in it.

Redis Cluster: classic SUBSCRIBE on one node, since a cluster forwards every PUBLISH (the
scripts') to all its nodes; sharded pub/sub would cost a connection per primary and channel
names in the scripts' slots, to save a fan-out that matters only past a few dozen nodes.

Written here rather than taken from broadcaster: its last release (0.3.1) delivers nothing
with redis-py 8 and loses a subscriber when two join a new channel at once (DESIGN.md).
Each channel is subscribed once however many listeners watch it; a message is decoded once
and handed to every listener without blocking. After a lost connection the hub reconnects,
subscribes again and asks every listener to resync, since pub/sub is at-most-once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from infrastructure.tasks import cancel_and_wait

log = logging.getLogger(__name__)

MAX_BACKOFF = 2.0


class Listener(Protocol):
    def deliver(self, channel: str, event: Any) -> None:
        """Called from the hub's reader task; must not block."""

    def resync(self) -> None:
        """Messages may have been lost; the listener should re-read the current state."""


class RedisHub:
    def __init__(
        self, redis: Redis, decode: Callable[[str, str], Any], name: str = "coursereg-hub"
    ) -> None:
        self.redis = redis
        self.decode = decode
        self.name = name  # CLIENT SETNAME of the connection, so operators can find it
        self._listeners: dict[str, set[Listener]] = {}
        self._subscribed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()
        self._resyncing: asyncio.Task[None] | None = None
        self.reconnects = 0

    @property
    def channel_count(self) -> int:
        return len(self._listeners)

    @property
    def listener_count(self) -> int:
        return sum(len(v) for v in self._listeners.values())

    async def start(self, channels: Iterable[str]) -> None:
        """Connect, holding `channels` (at least one) for the life of the process."""
        for channel in channels:
            self._listeners.setdefault(channel, set())
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")
        await asyncio.wait_for(self._connected.wait(), timeout=10)

    async def stop(self) -> None:
        await cancel_and_wait([self._task, self._resyncing])
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()

    async def add(self, listener: Listener, channels: Iterable[str]) -> None:
        """Returns once Redis has confirmed the subscription of every channel."""
        waits = []
        async with self._lock:
            for channel in channels:
                self._listeners.setdefault(channel, set()).add(listener)
                if channel not in self._subscribed:
                    self._subscribed[channel] = asyncio.get_running_loop().create_future()
                    if self._pubsub is not None and self._connected.is_set():
                        await self._send(self._pubsub.subscribe, channel)
                waits.append(self._subscribed[channel])
        await asyncio.gather(*(asyncio.shield(w) for w in waits))

    async def remove(self, listener: Listener, channels: Iterable[str]) -> None:
        async with self._lock:
            for channel in channels:
                members = self._listeners.get(channel)
                if members is None:
                    continue
                members.discard(listener)
                if not members:
                    del self._listeners[channel]
                    future = self._subscribed.pop(channel, None)
                    if future is not None and not future.done():
                        future.cancel()
                    if self._pubsub is not None and self._connected.is_set():
                        await self._send(self._pubsub.unsubscribe, channel)

    async def _send(self, command: Callable[..., Any], channel: str) -> None:
        # A lost connection here is noticed and repaired by the reader task.
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, OSError):
            await command(channel)

    async def _run(self) -> None:
        backoff = 0.05
        first = True
        while True:
            try:
                await self._connect(first)
                first, backoff = False, 0.05
                await self._read()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                self._connected.clear()
                log.warning("pub/sub connection lost (%s); reconnecting", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    async def _connect(self, first: bool) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        pubsub = self.redis.pubsub()
        await self._name(pubsub)
        async with self._lock:
            channels = list(self._listeners)
            for channel in channels:
                future = self._subscribed.get(channel)
                if future is None or future.done():
                    self._subscribed[channel] = asyncio.get_running_loop().create_future()
            await pubsub.subscribe(*channels)
            self._pubsub = pubsub
            self._connected.set()
            confirmations = [self._subscribed[c] for c in channels]
        if not first:
            self.reconnects += 1
            if self._resyncing is not None:
                self._resyncing.cancel()
            self._resyncing = asyncio.create_task(self._resync_when_subscribed(confirmations))

    async def _name(self, pubsub: PubSub) -> None:
        await pubsub.connect()
        assert pubsub.connection is not None
        await pubsub.connection.send_command("CLIENT", "SETNAME", self.name)
        with contextlib.suppress(ResponseError):  # a server that refuses names still works
            await pubsub.connection.read_response()

    async def _resync_when_subscribed(self, confirmations: list[asyncio.Future[None]]) -> None:
        # Only once Redis holds the subscriptions again: a listener re-reading its state
        # earlier could miss a change published in between.
        await asyncio.gather(*(asyncio.shield(c) for c in confirmations), return_exceptions=True)
        listeners = {listener for members in self._listeners.values() for listener in members}
        log.info("pub/sub reconnected; resyncing %d listeners", len(listeners))
        for listener in listeners:
            listener.resync()

    async def _read(self) -> None:
        assert self._pubsub is not None
        while True:
            message = await self._pubsub.get_message(timeout=None)
            if message is None:
                continue
            kind = message["type"]
            channel = message["channel"]
            if kind == "subscribe":
                future = self._subscribed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
            elif kind == "message":
                self._dispatch(channel, message["data"])

    def _dispatch(self, channel: str, data: str) -> None:
        members = self._listeners.get(channel)
        if not members:
            return
        try:
            event = self.decode(channel, data)
        except Exception:
            log.exception("undecodable message on %s", channel)
            return
        for listener in list(members):
            listener.deliver(channel, event)
