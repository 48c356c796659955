"""A graphql-transport-ws client on the `websockets` package, for tests and the bench.

Hand-written because the protocol needs only a few messages and the Python GraphQL clients
pull in much more; it speaks exactly what graphql-ws and Apollo send.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

PROTOCOL = "graphql-transport-ws"

SEAT_UPDATES = """subscription($ids: [UUID!]!) { seatUpdates(sectionIds: $ids) {
  sectionId availableSeats totalSeats waitlistLength version } }"""
WAITLIST_POSITION = """subscription($student: UUID!, $section: UUID!) {
  waitlistPosition(studentId: $student, sectionId: $section) {
    sectionId studentId status position } }"""


class Closed(Exception):
    """The server closed the socket; `code` is its close code."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class GqlSocket:
    """One websocket; messages of each operation id go to their own queue."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self._reading = asyncio.Event()
        self._reading.set()
        self.closed: Closed | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: str,
        token: str | None = None,
        payload: dict[str, Any] | None = None,
        **connect: Any,
    ) -> AsyncIterator[GqlSocket]:
        """Connect and acknowledge; raises Closed if the server refuses connection_init.
        `connect` goes to websockets.connect (default: an unbounded incoming queue)."""
        connect.setdefault("max_queue", None)
        async with websockets.connect(
            url, subprotocols=[Subprotocol(PROTOCOL)], **connect
        ) as connection:
            socket = cls(connection)
            init = payload if payload is not None else {}
            if token is not None:
                init = {**init, "Authorization": f"Bearer {token}"}
            await connection.send(json.dumps({"type": "connection_init", "payload": init}))
            ack = await socket._raw()
            if ack.get("type") != "connection_ack":
                raise AssertionError(f"expected connection_ack, got {ack}")
            socket._reader = asyncio.create_task(socket._read())
            try:
                yield socket
            finally:
                socket._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await socket._reader

    async def _raw(self) -> dict[str, Any]:
        try:
            return json.loads(await self.connection.recv())
        except websockets.ConnectionClosed as exc:
            rcvd = exc.rcvd
            raise Closed(rcvd.code if rcvd else None, rcvd.reason if rcvd else "") from None

    async def _read(self) -> None:
        try:
            while True:
                await self._reading.wait()
                message = await self._raw()
                if message.get("type") == "ping":
                    await self.connection.send(json.dumps({"type": "pong"}))
                    continue
                self._queue(message.get("id", "")).put_nowait(message)
        except Closed as exc:
            self.closed = exc
            for queue in self._queues.values():
                queue.put_nowait({"type": "closed", "code": exc.code})

    def pause(self) -> None:
        """Stop reading the socket (after the message in hand), like a stalled client."""
        self._reading.clear()

    def resume(self) -> None:
        self._reading.set()

    def _queue(self, operation_id: str) -> asyncio.Queue[dict[str, Any]]:
        return self._queues.setdefault(operation_id, asyncio.Queue())

    async def subscribe(self, query: str, **variables: Any) -> str:
        return await self.send_subscribe({"query": query, "variables": variables})

    async def send_subscribe(self, payload: dict[str, Any]) -> str:
        """Subscribe with this payload as it is (a documentId instead of the query, say)."""
        operation_id = str(next(self._ids))
        self._queue(operation_id)
        await self.connection.send(
            json.dumps({"id": operation_id, "type": "subscribe", "payload": payload})
        )
        return operation_id

    async def complete(self, operation_id: str) -> None:
        await self.connection.send(json.dumps({"id": operation_id, "type": "complete"}))

    async def receive(self, operation_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next message (next, error, complete) of one operation."""
        return await asyncio.wait_for(self._queue(operation_id).get(), timeout)

    async def data(self, operation_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The data of the next `next` message; fails on anything else."""
        message = await self.receive(operation_id, timeout)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return next(iter(data.values()))

    def pending(self, operation_id: str) -> int:
        return self._queue(operation_id).qsize()
