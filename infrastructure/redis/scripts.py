"""The Lua scripts, loaded once per client and run with EVALSHA (reloaded on NOSCRIPT).

Pipelines call EVALSHA directly: redis-py's pipeline would ask SCRIPT EXISTS before every
execute, a round trip the hot path cannot afford. They queue it as a raw command, since
redis-py's cluster pipeline blocks its `evalsha` method (it cannot reload a missing script;
Batch does); the cluster pipeline sends each call to the node of its keys' slot and refuses
a call whose keys are in different slots.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, ClassVar

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from infrastructure.redis.client import RedisClient

ScriptArg = str | int | float
# How long a script remembers its reply to an operation (lib/once.lua): longer than
# redis-py's retries of a lost reply, a request's life and the sweeper's wait.
MEMO_MS = 120_000


INCLUDE = "--!include "


def _source(name: str) -> str:
    """A script's text, with the libraries it includes on its first lines put in front."""
    folder = resources.files("infrastructure.redis")
    lines = folder.joinpath(f"{name}.lua").read_text().split("\n")
    libraries = []
    while lines and lines[0].startswith(INCLUDE):
        libraries.append(folder.joinpath(lines.pop(0).removeprefix(INCLUDE).strip()).read_text())
    return "\n".join([*libraries, *lines])


@dataclass(frozen=True, slots=True)
class Call:
    script: AsyncScript
    keys: Sequence[str]
    args: Sequence[ScriptArg]


class Scripts:
    """The scripts of this folder: one attribute per .lua file, named as the file (NAMES
    lists them, read from these annotations)."""

    NAMES: ClassVar[tuple[str, ...]]
    register: AsyncScript
    drop: AsyncScript
    capacity: AsyncScript
    open_section: AsyncScript
    load_section: AsyncScript
    begin: AsyncScript
    release: AsyncScript
    renew: AsyncScript
    resolve: AsyncScript
    reserve: AsyncScript
    move: AsyncScript
    mark: AsyncScript
    confirm: AsyncScript
    load_student: AsyncScript
    refresh: AsyncScript
    append: AsyncScript
    answer: AsyncScript
    acquire: AsyncScript
    read_shard: AsyncScript
    adopt: AsyncScript
    pending: AsyncScript
    bucket: AsyncScript

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        for name in self.NAMES:
            setattr(self, name, redis.register_script(_source(name)))

    async def run(self, call: Call) -> Any:
        return await call.script(keys=list(call.keys), args=list(call.args))

    async def run_many(self, calls: Sequence[Call]) -> list[Any]:
        """All calls in one pipelined round trip (see Batch)."""
        if len(calls) == 1:
            return [await self.run(calls[0])]
        batch = Batch(self)
        for call in calls:
            batch.call(call)
        return await batch.execute()

    @functools.cached_property
    def coalesced(self) -> Coalescer:
        """The hot path's way to run scripts: see Coalescer."""
        return Coalescer(self)


Scripts.NAMES = tuple(
    name for name, kind in inspect.get_annotations(Scripts).items() if kind == "AsyncScript"
)

Raw = tuple[Any, ...]  # a plain command and its arguments, as for execute_command


class Batch:
    """Script calls and plain commands sent together, through the Coalescer: concurrent
    requests' batches share one pipelined round trip. A script missing from the server's
    cache (a restarted Redis) is loaded and that call alone run again: the other commands
    are not repeated."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._items: list[Call | Raw] = []

    def call(self, call: Call) -> None:
        self._items.append(call)

    def zadd(self, key: str, mapping: dict[str, float]) -> None:
        self._items.append(("ZADD", key, *(x for m, sc in mapping.items() for x in (sc, m))))

    def zrem(self, key: str, *members: str) -> None:
        self._items.append(("ZREM", key, *members))

    def xadd(self, key: str, fields: dict[str, Any]) -> None:
        self._items.append(("XADD", key, "*", *(x for f, v in fields.items() for x in (f, v))))

    def __len__(self) -> int:
        return len(self._items)

    async def execute(self) -> list[Any]:
        if not self._items:
            return []
        return await self._scripts.coalesced.run(self._items)


class Coalescer:
    """Runs the script calls that concurrent requests make in the same event-loop turn in
    one pipeline. Each request still waits for one round trip, as with run_many; at the
    rush that round trip serves many requests, so redis-py's per-command costs (pool
    checkout, packing, a send and a read) are paid once per batch instead of per call. Each
    script stays atomic on its own: a batch only shares the trip. Written here because
    redis-py has no automatic pipelining for asyncio."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._waiting: list[tuple[Call | Raw, asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, items: Sequence[Call | Raw]) -> list[Any]:
        """Every item's reply, in order; a script missing from the server's cache (a
        restarted Redis) is loaded and that call alone run again."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        if not self._waiting:
            loop.call_soon(self._flush)
        self._waiting.extend(zip(items, futures, strict=True))
        # gather: when one fails (a lost connection fails them all), every other future's
        # exception is retrieved too, and a cancelled request cancels them all
        replies = [await futures[0]] if len(futures) == 1 else await asyncio.gather(*futures)
        for i, reply in enumerate(replies):
            item = items[i]
            if isinstance(reply, NoScriptError) and isinstance(item, Call):
                replies[i] = await self._scripts.run(item)
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Call | Raw, asyncio.Future[Any]]]) -> None:
        pipe = self._scripts.redis.pipeline(transaction=False)
        for item, _ in batch:
            if isinstance(item, Call):
                pipe.execute_command(
                    "EVALSHA", item.script.sha, len(item.keys), *item.keys, *item.args
                )
            else:
                pipe.execute_command(*item)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed: every caller in the batch sees it
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    future.cancel()
                else:
                    future.set_exception(exc)
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if not future.done():  # its request was cancelled meanwhile
                future.set_result(reply)
