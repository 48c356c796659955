"""Fan-out (issue 17 point 4): subscribers of one seatUpdates document share one execution
and one encoded payload per change, and each still gets exactly the frame the unshared path
sends them, with its own operation id; waitlist positions are never shared."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from graphql import ExecutionResult, GraphQLError, parse
from starlette.routing import Route
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from infrastructure.http.documents import TrustedTransportWS
from resolvers.fanout import SharedResults, event_variables, shared_results
from tests.client import drop, registered
from tests.conftest import Api, Catalog
from tests.integration.test_hub import publish_seat_events
from tests.servers import ws_url
from tests.wsclient import PROTOCOL, SEAT_UPDATES, WAITLIST_POSITION, GqlSocket

# Aliases, __typename, a fragment and a directive: the shapes a shared result must keep.
RICH_SEAT_UPDATES = """subscription Seats($ids: [UUID!]!, $wait: Boolean!) {
  seatUpdates(sectionIds: $ids) {
    __typename free: availableSeats ...Rest waitlistLength @include(if: $wait) } }
fragment Rest on SeatUpdate { sectionId totalSeats version }"""


@contextlib.asynccontextmanager
async def raw_subscriber(
    server: str, operation_id: str, query: str, **variables: Any
) -> AsyncIterator[ClientConnection]:
    """A websocket subscribed once, its snapshots read; frames are read raw (text)."""
    async with websockets.connect(ws_url(server), subprotocols=[Subprotocol(PROTOCOL)]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        payload = {"query": query, "variables": variables}
        await ws.send(json.dumps({"id": operation_id, "type": "subscribe", "payload": payload}))
        for _ in variables["ids"]:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "next"
        yield ws


async def frame(ws: ClientConnection) -> str:
    text = await asyncio.wait_for(ws.recv(), 5)
    assert isinstance(text, str)
    return text


async def test_subscribers_of_one_document_share_one_execution_and_one_encoding_per_change(
    api: Api, catalog: Catalog, server: str
) -> None:
    section, other = await catalog.section(seats=5), await catalog.section(seats=5)
    s, o = str(section.id), str(other.id)
    channel = api.container.keys.section_channel(section.id)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(raw_subscriber(server, op, SEAT_UPDATES, ids=ids))
            for op, ids in [("a", [s]), ("b", [s]), ("long-id-c", [s]), ("d", [o, s])]
        ]
        executions, encodings = shared_results.executions, shared_results.encodings
        await publish_seat_events(api.container.redis, channel, section.id, [10_000])
        frames = [await frame(ws) for ws in sockets]
    assert shared_results.executions - executions == 1
    assert shared_results.encodings - encodings == 1
    payloads = [json.loads(f) for f in frames]
    assert [p["id"] for p in payloads] == ["a", "b", "long-id-c", "d"]
    assert {
        f.replace(f'"id":"{p["id"]}"', '"id":"X"') for f, p in zip(frames, payloads, strict=True)
    } == {frames[0].replace('"id":"a"', '"id":"X"')}
    assert payloads[0]["payload"]["data"]["seatUpdates"]["version"] == 10_000


def graphql_view(api: Api) -> Any:
    (route,) = [r for r in api.app.routes if isinstance(r, Route) and r.path == "/graphql"]
    return route.endpoint


async def test_a_shared_frame_is_byte_for_byte_the_frame_the_unshared_path_sends(
    api: Api, catalog: Catalog, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = await catalog.section(seats=5)
    channel = api.container.keys.section_channel(section.id)
    ids = [str(section.id)]
    view = graphql_view(api)
    async with contextlib.AsyncExitStack() as stack:
        shared = [
            await stack.enter_async_context(
                raw_subscriber(server, "7", RICH_SEAT_UPDATES, ids=ids, wait=wait)
            )
            for wait in (True, False)
        ]
        # From here on a new subscription runs as before this change: Strawberry's own
        # handler and executor, each result executed and encoded for its subscriber.
        monkeypatch.setattr(view, "graphql_transport_ws_handler_class", TrustedTransportWS)
        monkeypatch.setattr(
            view.schema, "execution_context_class", StrawberryGraphQLCoreExecutionContext
        )
        unshared = [
            await stack.enter_async_context(
                raw_subscriber(server, "7", RICH_SEAT_UPDATES, ids=ids, wait=wait)
            )
            for wait in (True, False)
        ]
        executions, encodings = shared_results.executions, shared_results.encodings
        await publish_seat_events(api.container.redis, channel, section.id, [20_000])
        got_shared = [await frame(ws) for ws in shared]
        got_unshared = [await frame(ws) for ws in unshared]
    # Two results (the directive's variable differs), each executed and encoded once.
    assert (shared_results.executions - executions, shared_results.encodings - encodings) == (
        2,
        2,
    )
    assert got_shared == got_unshared
    assert "waitlistLength" in got_shared[0] and "waitlistLength" not in got_shared[1]
    assert json.loads(got_shared[0])["payload"]["data"]["seatUpdates"]["__typename"] == (
        "SeatUpdate"
    )


async def test_waitlist_positions_are_executed_per_subscriber_and_never_shared(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=1)
    holder, first, second = await catalog.students(3)
    for student in (holder, first, second):
        await registered(api, student, section)
    async with contextlib.AsyncExitStack() as stack:
        mine = {}
        for student in (first, second):
            ws = await stack.enter_async_context(
                GqlSocket.open(ws_url(server), token=api.student_token(student.id))
            )
            op = await ws.subscribe(
                WAITLIST_POSITION, student=str(student.id), section=str(section.id)
            )
            assert (await ws.data(op))["studentId"] == str(student.id)
            mine[student.id] = (ws, op)
        executions = shared_results.executions
        await drop(api, holder, section)  # the head is promoted, the second moves up
        seen = {s: await ws.data(op) for s, (ws, op) in mine.items()}
    assert shared_results.executions == executions
    assert {s: (u["studentId"], u["status"], u["position"]) for s, u in seen.items()} == {
        first.id: (str(first.id), "ENROLLED", None),
        second.id: (str(second.id), "WAITING", 1),
    }


def test_the_variables_a_shared_result_depends_on_are_those_below_the_root_field() -> None:
    document = parse(RICH_SEAT_UPDATES)
    operation, fragment = document.definitions
    fragments = {"Rest": fragment}
    assert event_variables(operation, fragments) == ["wait"]  # type: ignore[arg-type]
    plain = parse(SEAT_UPDATES).definitions[0]
    assert event_variables(plain, {}) == []  # type: ignore[arg-type]


def test_the_memo_keeps_its_bound_and_never_shares_a_result_with_errors() -> None:
    memo = SharedResults(limit=2)
    operation, other = object(), object()
    results = [ExecutionResult({"n": n}) for n in range(3)]
    for n, result in enumerate(results):
        memo.put(("k", n), operation, result)
    assert memo.get(("k", 0), operation) is None  # the oldest went
    assert memo.get(("k", 2), operation) is results[2]
    assert memo.get(("k", 2), other) is None  # another operation at a reused id
    assert memo.encoded(results[2].data, json.dumps) == '{"data": {"n": 2}}'
    assert memo.encoded(results[0].data, json.dumps) is None
    assert memo.encoded({"n": 2}, json.dumps) is None  # equal, but not the shared object
    failed = ExecutionResult({"n": 3}, errors=[GraphQLError("no")])
    memo.put(("k", 3), operation, failed)
    assert memo.get(("k", 3), operation) is None
    assert memo.get(("k", uuid.uuid4()), operation) is None
