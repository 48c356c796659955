"""`python -m bench.fanout`: the fan-out of one change, in one process and in memory.

N seatUpdates subscribers of one section on the app's own graphql-transport-ws handler,
each an ASGI websocket whose frames land in memory (no sockets, no client processes: what
is timed is the API's own work per push). Then single changes, published on the section's
channel as the seat scripts publish them: "time to last push" runs from the PUBLISH until
the last subscriber's frame is handed to its websocket, "CPU per push" is this process's
CPU over that span divided by N. `--unshared` runs the subscribers on Strawberry's own
handler and executor (each result executed and encoded per subscriber), for the comparison
in one run; the schema's extension runner (resolvers/fanout.py LeanStreamRunner) stays.

Needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL); makes and drops its own database
and key prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx
from starlette.routing import Route
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from bench.replica import run_in_scratch_database
from bench.subscribers import Staff, make_catalog
from domain.wire import EventField as E
from infrastructure.http.app import create_app
from infrastructure.http.documents import TrustedTransportWS
from infrastructure.settings import Settings
from tests.wsclient import PROTOCOL, SEAT_UPDATES

OPENING_AT_ONCE = 200


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.fanout", description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=10_000)
    p.add_argument("--changes", type=int, default=5, help="single changes, one at a time")
    p.add_argument("--unshared", action="store_true", help="Strawberry's per-subscriber path")
    p.add_argument("--out", help="also write the figures to this JSON file")
    return p.parse_args()


class Count:
    """`next` frames handed to the websockets since the last change was published; `done`
    is set at `target`. Counting only (no decoding), to keep the harness's own CPU out."""

    def __init__(self) -> None:
        self.frames = 0
        self.target = 0
        self.done = asyncio.Event()


class Subscriber:
    """One in-memory websocket: frames before the changes are queued (the handshake and
    the snapshot), `next` frames after counted."""

    def __init__(self, app: Any, count: Count) -> None:
        self.app = app
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: asyncio.Queue[str] = asyncio.Queue()
        self.count = count
        self.counting = False
        self.task: asyncio.Task[None] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.inbox.get()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            text = message["text"]
            if self.counting and '"type":"next"' in text:
                count = self.count
                count.frames += 1
                if count.frames == count.target:
                    count.done.set()
            else:
                await self.frames.put(text)

    def say(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait({"type": "websocket.receive", "text": json.dumps(message)})

    async def open(self, section: str) -> None:
        scope = {
            "type": "websocket",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "root_path": "",
            "scheme": "ws",
            "query_string": b"",
            "headers": [(b"sec-websocket-protocol", PROTOCOL.encode()), (b"host", b"bench")],
            "subprotocols": [PROTOCOL],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
            "state": {},
            "extensions": {},
        }
        self.inbox.put_nowait({"type": "websocket.connect"})
        self.task = asyncio.create_task(self.app(scope, self.receive, self.send))
        self.say({"type": "connection_init", "payload": {}})
        assert json.loads(await self.frames.get())["type"] == "connection_ack"
        payload = {"query": SEAT_UPDATES, "variables": {"ids": [section]}}
        self.say({"id": "1", "type": "subscribe", "payload": payload})
        assert json.loads(await self.frames.get())["type"] == "next"  # the snapshot


def graphql_view(app: Any) -> Any:
    (route,) = [r for r in app.routes if isinstance(r, Route) and r.path == "/graphql"]
    return route.endpoint


async def run(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    app = create_app(settings)
    if args.unshared:
        view = graphql_view(app)
        view.graphql_transport_ws_handler_class = TrustedTransportWS
        view.schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    async with app.router.lifespan_context(app):
        while not app.state.readiness.state_loaded:
            await asyncio.sleep(0.1)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            sections, _students = await make_catalog(Staff(http, settings), 1)
        section = sections[0]
        count = Count()
        subscribers = [Subscriber(app, count) for _ in range(args.subscribers)]
        opening = asyncio.Semaphore(OPENING_AT_ONCE)

        async def open_one(subscriber: Subscriber) -> None:
            async with opening:
                await subscriber.open(section)

        opened = time.monotonic()
        await asyncio.gather(*(open_one(s) for s in subscribers))
        print(f"{len(subscribers)} subscribers in {time.monotonic() - opened:.1f} s", flush=True)
        count.target = len(subscribers)
        for subscriber in subscribers:
            subscriber.counting = True
        container = app.state.container
        channel = container.keys.section_channel(section)
        rows = []
        for n in range(1, args.changes + 1):
            version = 1_000_000 + n
            event = {E.SECTION: section, E.VERSION: version, E.AVAILABLE: 9, E.TOTAL: 10}
            event |= {E.WAITLIST: 0, E.KIND: "join"}
            await asyncio.sleep(0.5)
            count.frames = 0
            count.done.clear()
            cpu, started = time.process_time(), time.perf_counter()
            await container.redis.publish(channel, json.dumps(event))
            await asyncio.wait_for(count.done.wait(), 120)
            elapsed, used = time.perf_counter() - started, time.process_time() - cpu
            rows.append(
                {
                    "time_to_last_push_ms": round(elapsed * 1000, 1),
                    "cpu_ms_per_push": round(used * 1000 / len(subscribers), 4),
                }
            )
            print(rows[-1], flush=True)
        for subscriber in subscribers:
            subscriber.inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})
        await asyncio.gather(*(s.task for s in subscribers if s.task), return_exceptions=True)
    return {
        "subscribers": args.subscribers,
        "path": "unshared (Strawberry per subscriber)" if args.unshared else "shared",
        "changes": rows,
        "time_to_last_push_ms_median": statistics.median(r["time_to_last_push_ms"] for r in rows),
        "cpu_ms_per_push_median": statistics.median(r["cpu_ms_per_push"] for r in rows),
    }


def main() -> None:
    args = parse()
    run_in_scratch_database(lambda settings: run(args, settings), args.out)


if __name__ == "__main__":
    main()
