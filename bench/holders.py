"""A client process of the subscriber bench: holds many seatUpdates websockets on one API
process and records when each push arrives (CLOCK_MONOTONIC, comparable across processes
on one machine). Plain `websockets`, one task per socket, to stay light at thousands."""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

import websockets
from websockets.typing import Subprotocol

PROTOCOL = "graphql-transport-ws"
SEAT_UPDATES = """subscription($ids: [UUID!]!) { seatUpdates(sectionIds: $ids) {
  sectionId availableSeats totalSeats waitlistLength version } }"""
OPENING_AT_ONCE = 64


@dataclass(frozen=True)
class Assignment:
    """`count` subscribers on `url`; subscriber i watches sections[(first + i) % len], and
    every one of them also `hot` if given (one change there reaches them all)."""

    tag: str
    url: str
    sections: list[str]
    first: int
    count: int
    hot: str | None = None


Push = tuple[str, int, float]  # (section id, version, monotonic time received)


def hold(job: Assignment, ready: Queue[Any], stop: Event, results: Queue[Any]) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_hold(job, ready, stop, results))


async def _hold(job: Assignment, ready: Queue[Any], stop: Event, results: Queue[Any]) -> None:
    pushes: list[Push] = []
    opening = asyncio.Semaphore(OPENING_AT_ONCE)
    subscribed = [asyncio.Event() for _ in range(job.count)]
    tasks = [
        asyncio.create_task(_subscriber(job, n, opening, subscribed[n], pushes))
        for n in range(job.count)
    ]
    waiting = asyncio.ensure_future(asyncio.gather(*(s.wait() for s in subscribed)))
    started: list[asyncio.Future[Any]] = [waiting, *tasks]
    done, _ = await asyncio.wait(started, return_when=asyncio.FIRST_COMPLETED)
    for task in done - {waiting}:
        task.result()  # a subscriber that ended before all were in: its error, if any
    ready.put((job.tag, job.count))
    await asyncio.to_thread(stop.wait)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put((job.tag, pushes))


async def _subscriber(
    job: Assignment, n: int, opening: asyncio.Semaphore, subscribed: asyncio.Event, pushes: list
) -> None:
    section = job.sections[(job.first + n) % len(job.sections)]
    ids = [section, job.hot] if job.hot else [section]
    async with opening:
        ws = await websockets.connect(
            job.url,
            subprotocols=[Subprotocol(PROTOCOL)],
            open_timeout=120,
            ping_interval=None,
        )
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        payload = {"query": SEAT_UPDATES, "variables": {"ids": ids}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        for _ in ids:
            await ws.recv()  # the snapshot
    subscribed.set()
    async with ws:
        async for raw in ws:
            received = time.monotonic()
            message = json.loads(raw)
            if message.get("type") == "next":
                update = message["payload"]["data"]["seatUpdates"]
                pushes.append((update["sectionId"], update["version"], received))
