"""Limits with clear, coded errors (http/limits.py, ratelimit.py): query depth,
aliases and tokens; request bodies (413); subscriptions per websocket; connection_init
timeout; the per-student and per-address rates of register and drop (RATE_LIMITED with
retryAfter over GraphQL, 429 with Retry-After over REST); introspection and GraphiQL off.
A refused request changes nothing."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from domain.model import Role
from infrastructure.settings import Settings
from tests.client import DROP, REGISTER, SWAP
from tests.conftest import Api, Catalog, running_app
from tests.footprint import assert_no_internals, error_code, footprint
from tests.servers import serve, ws_url
from tests.wsclient import PROTOCOL, SEAT_UPDATES, GqlSocket

LIMITS = {
    "max_query_depth": 4,
    "max_aliases": 3,
    "max_tokens": 200,
    "max_body_bytes": 4096,
    "max_subscriptions": 2,
    "connection_init_seconds": 0.5,
    # Slow refills, so a loaded machine's slowness does not refill a bucket mid-test.
    "rate_student": 0.1,
    "rate_student_burst": 3,
    "rate_ip": 0.2,
    "rate_ip_burst": 8,
}


@pytest.fixture
async def limited(api: Api, settings: Settings) -> AsyncIterator[Api]:
    """A second app on the same database and key space, with small limits."""
    async with running_app(settings.model_copy(update=LIMITS)) as app:
        yield app


def nested(depth: int) -> str:
    """section -> course -> sections -> course ...: a cycle in the schema, `depth` deep."""
    path = ["course" if level % 2 == 0 else "sections" for level in range(depth - 1)]
    inner = "id"
    for field in reversed(path):
        inner = f"{field} {{ {inner} }}"
    return f'{{ section(id: "00000000-0000-4000-8000-000000000000") {{ {inner} }} }}'


async def post(api: Api, query: str, token: str | None = None, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await api.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def refused(response: httpx.Response, code: str, words: str) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    assert_no_internals(response.text)
    body = response.json()
    assert error_code(body) == code, body
    assert words in body["errors"][0]["message"], body
    return body


async def test_a_query_deeper_than_the_limit_is_refused_and_one_within_it_runs(
    limited: Api,
) -> None:
    refused(await post(limited, nested(5)), "BAD_USER_INPUT", "exceeds maximum operation depth")
    ok = (await post(limited, nested(4))).json()
    assert ok == {"data": {"section": None}}, ok


async def test_too_many_aliases_are_refused(limited: Api) -> None:
    aliases = " ".join(f"a{i}: semesters {{ id }}" for i in range(4))
    refused(await post(limited, f"{{ {aliases} }}"), "BAD_USER_INPUT", "aliases")
    three = " ".join(f"a{i}: semesters {{ id }}" for i in range(3))
    assert "errors" not in (await post(limited, f"{{ {three} }}")).json()


async def test_a_document_of_too_many_tokens_is_refused(limited: Api) -> None:
    fields = " ".join("__typename" for _ in range(250))
    refused(await post(limited, f"{{ {fields} }}"), "BAD_USER_INPUT", "tokens")


async def test_a_body_over_the_limit_is_413_with_a_coded_error_and_changes_nothing(
    limited: Api, catalog: Catalog
) -> None:
    await catalog.section(seats=2)
    before = await footprint(limited)
    big = {"query": "{ semesters { id } }", "variables": {"pad": "x" * 5000}}
    response = await limited.client.post("/graphql", json=big)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        for _ in range(10):
            yield b" " * 1000

    response = await limited.client.post(
        "/api/v1/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["code"] == "BAD_USER_INPUT"
    assert await footprint(limited) == before
    small = await limited.client.post("/graphql", json={"query": "{ semesters { id } }"})
    assert small.status_code == 200


async def test_register_and_drop_are_rate_limited_per_student_with_retry_after(
    limited: Api, catalog: Catalog
) -> None:
    """Invariant: a refused request changes nothing (refills: tests/unit/test_ratelimit.py)."""
    section = await catalog.section(seats=5)
    student = await catalog.student()
    token = limited.student_token(student.id)
    ids = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
    drop = {"studentId": str(student.id), "sectionId": str(section.id)}
    for _ in range(3):  # the burst
        assert "errors" not in (await post(limited, REGISTER, token, i=ids)).json()
    before = await footprint(limited)
    response = await post(limited, DROP, token, i=drop)
    body = refused(response, "RATE_LIMITED", "too many")
    retry_after = body["errors"][0]["extensions"]["retryAfter"]
    assert 0 < retry_after <= 10
    assert response.headers["Retry-After"] == str(math.ceil(retry_after))
    rest = await limited.client.post(
        "/api/v1/register/drop",
        json={"student_id": str(student.id), "section_id": str(section.id)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert rest.status_code == 429 and 1 <= int(rest.headers["Retry-After"]) <= 10
    assert rest.json()["errors"][0]["code"] == "RATE_LIMITED"
    assert await footprint(limited) == before
    other = await catalog.student()  # another student is not held back
    mine = {"studentId": str(other.id), "sectionIds": [str(section.id)]}
    answer = await post(limited, REGISTER, limited.student_token(other.id), i=mine)
    assert "errors" not in answer.json(), answer.text


CLAIM = """mutation($s: UUID!, $c: UUID!) { claimSeat(studentId: $s, sectionId: $c) { status } }"""
DECLINE = """mutation($s: UUID!, $c: UUID!) {
  declineOffer(studentId: $s, sectionId: $c) { status } }"""


async def test_swap_claim_and_decline_share_the_students_budget(
    limited: Api, catalog: Catalog
) -> None:
    """They write on the hot path like register and drop, so they spend the same tokens."""
    semester = await catalog.semester()
    held, wanted = (await catalog.section(5, semester), await catalog.section(5, semester))
    student = await catalog.student()
    token = limited.student_token(student.id)
    ids = {"studentId": str(student.id), "sectionIds": [str(held.id)]}
    for _ in range(3):  # the burst
        assert "errors" not in (await post(limited, REGISTER, token, i=ids)).json()
    before = await footprint(limited)
    swap = {"studentId": str(student.id), "dropSectionId": str(held.id)}
    swap["addSectionId"] = str(wanted.id)
    refused(await post(limited, SWAP, token, i=swap), "RATE_LIMITED", "too many")
    for query in (CLAIM, DECLINE):
        response = await post(limited, query, token, s=str(student.id), c=str(wanted.id))
        refused(response, "RATE_LIMITED", "too many")
    assert await footprint(limited) == before


async def test_staff_are_limited_per_address_not_per_student(
    limited: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=50)
    students = await catalog.students(9)
    staff = limited.token(Role.STAFF)
    answers = []
    for student in students:
        ids = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
        answers.append((await post(limited, REGISTER, staff, i=ids)).json())
    assert all("errors" not in a for a in answers[:8]), answers
    assert error_code(answers[8]) == "RATE_LIMITED"
    assert "this address" in answers[8]["errors"][0]["message"]


async def test_each_client_address_has_its_own_budget(limited: Api, catalog: Catalog) -> None:
    """Over a real socket uvicorn takes the address from X-Forwarded-For (a trusted local
    proxy), so two clients behind it get a bucket each."""
    section = await catalog.section(seats=50)
    students = await catalog.students(10)
    staff = limited.token(Role.STAFF)
    async with serve(limited.app) as url, httpx.AsyncClient(base_url=url) as client:

        async def register(student: Any, address: str) -> dict[str, Any]:
            body = {"query": REGISTER, "variables": {"i": {
                "studentId": str(student.id), "sectionIds": [str(section.id)]}}}  # fmt: skip
            headers = {"Authorization": f"Bearer {staff}", "X-Forwarded-For": address}
            return (await client.post("/graphql", json=body, headers=headers)).json()

        first = [await register(s, "10.0.0.1") for s in students[:9]]
        other = await register(students[9], "10.0.0.2")
    assert error_code(first[8]) == "RATE_LIMITED"
    assert "errors" not in other, other


async def test_subscriptions_past_the_limit_per_connection_get_a_coded_error(
    limited: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=2)
    async with serve(limited.app) as url, GqlSocket.open(ws_url(url)) as ws:
        for _ in range(2):
            assert await ws.data(await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)]))
        third = await ws.receive(await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)]))
        assert third["type"] == "error", third
        assert third["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert ws.closed is None, "the socket stays open"


async def test_a_socket_that_never_sends_connection_init_is_closed_4408(limited: Api) -> None:
    async with serve(limited.app) as url:
        started = time.monotonic()
        async with websockets.connect(ws_url(url), subprotocols=[Subprotocol(PROTOCOL)]) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert time.monotonic() - started < 3


async def test_the_legacy_graphql_ws_protocol_is_refused(limited: Api) -> None:
    """Only the contract's graphql-transport-ws: the legacy protocol has no init timeout."""
    async with serve(limited.app) as url:
        try:
            async with websockets.connect(
                ws_url(url), subprotocols=[Subprotocol("graphql-ws")]
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
                await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None and exc.rcvd.code == 4406
        except websockets.InvalidHandshake:
            pass  # refused before the upgrade: as good
        else:
            raise AssertionError("the legacy protocol was served")


async def test_introspection_and_graphiql_can_be_turned_off(settings: Settings, api: Api) -> None:
    closed = settings.model_copy(update={"introspection": False, "graphiql": False})
    async with running_app(closed) as app:
        body = (await post(app, "{ __schema { types { name } } }")).json()
        assert error_code(body) == "BAD_USER_INPUT" and "introspection" in str(body).lower()
        typename = (await post(app, '{ __type(name: "Section") { name } }')).json()
        assert error_code(typename) == "BAD_USER_INPUT"
        page = await app.client.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code in (400, 404) and "graphiql" not in page.text.lower()
        assert "errors" not in (await post(app, "{ semesters { id } }")).json()
    page = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower(), "on by default"
    schema = (await post(api, "{ __schema { queryType { name } } }")).json()
    assert schema["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_a_subscription_over_the_limit_does_not_close_the_others(
    limited: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=3)
    async with serve(limited.app) as url, GqlSocket.open(ws_url(url)) as ws:
        first = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await ws.data(first))["totalSeats"] == 3
        await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        student = await catalog.student()
        staff = limited.token()
        ids = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
        assert "errors" not in (await post(limited, REGISTER, staff, i=ids)).json()
        assert (await ws.data(first))["availableSeats"] == 2
