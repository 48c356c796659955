"""Hostile input: a table of bad requests over HTTP (GraphQL and REST) and websocket.

Each gets a coded GraphQL error or a 4xx (a websocket: a coded `error` message, or a close
with a 44xx code), never a 500, a 1011 close or a stack trace; nothing is logged as an
unexpected error; and Redis and Postgres are exactly as they were (tests/footprint.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
import websockets
from websockets.typing import Subprotocol

from tests.client import DROP, REGISTER
from tests.conftest import SECRET, Api, Catalog
from tests.footprint import assert_no_internals, footprint
from tests.servers import ws_url
from tests.wsclient import PROTOCOL

CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "STUDENT_NOT_ELIGIBLE",
    "RATE_LIMITED",
    "UNAVAILABLE",
    # Outside the contract's list: Apollo's answer to an unknown persisted-document id,
    # which its clients match to send the text (infrastructure/http/documents.py).
    "PERSISTED_QUERY_NOT_FOUND",
}
SEATS = """subscription($ids: [UUID!]!) { seatUpdates(sectionIds: $ids) { version } }"""
WAITLIST = """subscription($s: UUID!, $c: UUID!) {
  waitlistPosition(studentId: $s, sectionId: $c) { status } }"""


@dataclass
class World:
    section: str
    me: str
    other: str
    token: str  # me's
    staff: str


@pytest.fixture
async def world(api: Api, catalog: Catalog) -> World:
    section = await catalog.section(seats=2)
    me, other = await catalog.students(2)
    body = await api.gql(
        REGISTER,
        api.student_token(other.id),
        i={"studentId": str(other.id), "sectionIds": [str(section.id)]},
    )
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    return World(str(section.id), str(me.id), str(other.id), api.student_token(me.id), api.token())


# -- HTTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    """A request built from the world: method, path, raw body or JSON, headers."""

    method: str = "POST"
    path: str = "/graphql"
    body: Callable[[World], Any] | None = None  # JSON-encoded
    raw: Callable[[World], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    token: str = "student"  # student (me), staff, none


def gql(query: str, **variables: Any) -> Callable[[World], Any]:
    return lambda w: {
        "query": query,
        "variables": {k: v(w) if callable(v) else v for k, v in variables.items()},
    }


def reg(**fields: Any) -> Callable[[World], Any]:
    def build(w: World) -> dict[str, Any]:
        base = {"studentId": w.me, "sectionIds": [w.section], **fields}
        return {k: (v(w) if callable(v) else v) for k, v in base.items()}

    return build


def nested_json(depth: int) -> bytes:
    return (
        b'{"query": "{ semesters { id } }", "variables": {"x": '
        + b"[" * depth
        + b"]" * depth
        + b"}}"
    )


def nested_query(depth: int) -> str:
    path = ["course" if level % 2 == 0 else "sections" for level in range(depth)]
    inner = "id"
    for name in reversed(path):
        inner = f"{name} {{ {inner} }}"
    return '{ section(id: "00000000-0000-4000-8000-000000000000") { ' + inner + " } }"


def laughs(levels: int) -> str:
    """Fragments that each spread the next one twice, the last with an alias: 2**levels
    aliases once expanded (and 2**levels steps for a limiter that walks every spread)."""
    parts = ["query { ...F0 }"]
    for i in range(levels):
        parts.append(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}")
    parts.append(f"fragment F{levels} on Query {{ x: semesters {{ id }} }}")
    return " ".join(parts)


UUID_ = "5a1d6c1e-0000-4000-8000-000000000000"
MB = 1_048_576
HTTP_CASES: dict[str, Http] = {
    # malformed JSON and bodies
    "malformed-json": Http(raw=lambda w: b"{not json"),
    "truncated-json": Http(raw=lambda w: b'{"query": "{ semesters { id } }"'),
    "empty-body": Http(raw=lambda w: b""),
    "json-string": Http(raw=lambda w: b'"{ semesters { id } }"'),
    "json-number": Http(raw=lambda w: b"42"),
    "invalid-utf8": Http(raw=lambda w: b'{"query": "\xff\xfe"}'),
    "nul-bytes-in-query": Http(body=lambda w: {"query": "{ semesters\x00 { id } }"}),
    "query-is-a-number": Http(body=lambda w: {"query": 5}),
    "query-is-null": Http(body=lambda w: {"query": None}),
    "query-is-an-object": Http(body=lambda w: {"query": {"a": 1}}),
    "no-query": Http(body=lambda w: {}),
    "variables-a-string": Http(body=lambda w: {"query": REGISTER, "variables": "x"}),
    "variables-a-list": Http(body=lambda w: {"query": REGISTER, "variables": [1, 2]}),
    "extensions-a-string": Http(
        body=lambda w: {"query": "{ semesters { id } }", "extensions": "x"}
    ),
    "persisted-query-hash-only": Http(
        body=lambda w: {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "ab" * 32}}}
    ),
    "deeply-nested-json-variables": Http(raw=lambda w: nested_json(100_000)),
    "json-infinity": Http(
        raw=lambda w: (
            b'{"query": "mutation($s: UUID!, $n: Int!) { setSectionCapacity('
            b'sectionId: $s, totalSeats: $n) { id } }", "variables": {"s": "'
            + w.section.encode()
            + b'", "n": 1e400}}'
        ),
        token="staff",
    ),
    "json-nan": Http(
        raw=lambda w: (
            b'{"query": "mutation($s: UUID!, $n: Int!) { setSectionCapacity('
            b'sectionId: $s, totalSeats: $n) { id } }", "variables": {"s": "'
            + w.section.encode()
            + b'", "n": NaN}}'
        ),
        token="staff",
    ),
    # batching, operations
    "batched-operations": Http(
        raw=lambda w: json.dumps(
            [{"query": "{ semesters { id } }"}, {"query": "{ semesters { id } }"}]
        ).encode()
    ),
    "batched-mutations": Http(
        raw=lambda w: json.dumps([{"query": REGISTER, "variables": {"i": reg()(w)}}] * 5).encode()
    ),
    "unknown-operation-name": Http(
        body=lambda w: {
            "query": "query A { semesters { id } } query B { semesters { id } }",
            "operationName": "C",
        }
    ),
    "duplicate-operation-names": Http(
        body=lambda w: {"query": "query A { semesters { id } } query A { semesters { name } }"}
    ),
    "operation-name-huge": Http(
        body=lambda w: {"query": "{ semesters { id } }", "operationName": "x" * 100_000}
    ),
    "subscription-over-http": Http(body=gql(SEATS, ids=lambda w: [w.section])),
    # content types and methods
    "text-plain": Http(
        raw=lambda w: json.dumps({"query": "{ semesters { id } }"}).encode(),
        headers={"Content-Type": "text/plain"},
    ),
    "xml": Http(
        raw=lambda w: b"<query>{ semesters { id } }</query>",
        headers={"Content-Type": "application/xml"},
    ),
    "multipart-upload": Http(
        raw=lambda w: (
            b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            b'{"query": "{ semesters { id } }"}\r\n--b--\r\n'
        ),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    ),
    "form-urlencoded": Http(
        raw=lambda w: b"query=%7B+semesters+%7B+id+%7D+%7D",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "mutation-over-get": Http(
        method="GET",
        path="/graphql?query=mutation%7BcreateCourse(input:%7Bcode:%22X%22,name:%22Y%22%7D)%7Bid%7D%7D",
        token="staff",
    ),
    "get-unparseable": Http(method="GET", path="/graphql?query=%7B%7B%7B"),
    "get-variables-not-json": Http(
        method="GET", path="/graphql?query=%7Bsemesters%7Bid%7D%7D&variables=%7Bnope"
    ),
    "put": Http(method="PUT", body=lambda w: {"query": "{ semesters { id } }"}),
    "delete": Http(method="DELETE"),
    "patch": Http(method="PATCH", body=lambda w: {"query": "{ semesters { id } }"}),
    # documents: unknown fields, wrong types, limits
    "syntax-error": Http(body=gql("mutation { register(input: {")),
    "unknown-field": Http(body=gql("{ nosuchfield }")),
    "unknown-argument": Http(body=gql("{ semesters(foo: 1) { id } }")),
    "unknown-type-in-variable": Http(body=gql("query($x: Bogus) { semesters { id } }", x=1)),
    "unknown-directive": Http(body=gql("{ semesters @bogus { id } }")),
    "invalid-default": Http(body=gql('query($v: Int = "s") { semesters { id } }')),
    "undeclared-variable": Http(body=gql("{ section(id: $x) { id } }")),
    "missing-required-variable": Http(body=gql(REGISTER)),
    "variable-wrong-type": Http(body=gql(REGISTER, i=reg(studentId=123))),
    "variable-bad-uuid": Http(body=gql(REGISTER, i=reg(studentId="not-a-uuid"))),
    "unknown-input-field": Http(body=gql(REGISTER, i=reg(bogus=1))),
    "list-for-a-scalar": Http(body=gql(REGISTER, i=reg(studentId=[UUID_]))),
    "object-for-a-list": Http(body=gql(REGISTER, i=reg(sectionIds={"a": 1}))),
    "int-overflow": Http(
        body=gql(
            "mutation($s: UUID!, $n: Int!) { setSectionCapacity(sectionId: $s, "
            "totalSeats: $n) { id } }",
            s=lambda w: w.section,
            n=2**40,
        ),
        token="staff",
    ),
    "negative-page-size": Http(body=gql("{ sections(first: -1) { edges { node { id } } } }")),
    "huge-string": Http(body=gql(REGISTER, i=reg(idempotencyKey="k" * 900_000))),
    "huge-list": Http(body=gql(REGISTER, i=reg(sectionIds=[UUID_] * 20_000))),
    "huge-list-of-nulls": Http(body=gql(REGISTER, i=reg(sectionIds=[None] * 20_000))),
    "deep-nesting": Http(body=gql(nested_query(40))),
    "deeper-than-the-parser": Http(body=gql("{" * 5000 + "}" * 5000)),
    "alias-amplification": Http(
        body=gql(
            "{ "
            + " ".join(
                f"a{i}: sections(first: 500) {{ edges {{ node {{ id }} }} }}" for i in range(100)
            )
            + " }"
        )
    ),
    "fragment-cycle": Http(
        body=gql("query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }")
    ),
    "fragment-laughs": Http(body=gql(laughs(40))),
    "repeated-fields": Http(body=gql("{ " + "semesters { id } " * 3000 + "}")),
    "repeated-directives": Http(
        body=gql("{ semesters " + "@include(if: true) " * 2000 + "{ id } }")
    ),
    "too-many-tokens": Http(body=gql("{ " + "__typename " * 5000 + "}")),
    "oversized-body": Http(
        raw=lambda w: b'{"query": "' + b" " * (2 * MB) + b'{ semesters { id } }"}'
    ),
    # auth (GraphQL)
    "alg-none-token": Http(
        body=gql(REGISTER, i=reg()),
        headers={
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "x", "role": "staff", "exp": int(time.time()) + 60}, "", algorithm="none"
            )
        },
        token="none",
    ),
    "forged-signature": Http(
        body=gql(REGISTER, i=reg()),
        headers={
            "Authorization": "Bearer "
            + jwt.encode({"sub": "x", "role": "staff", "exp": int(time.time()) + 60}, "x" * 40)
        },
        token="none",
    ),
    "acting-for-another-student": Http(
        body=gql(DROP, i=lambda w: {"studentId": w.other, "sectionId": w.section})
    ),
    "student-calling-staff-mutation": Http(
        body=gql(
            "mutation($s: UUID!) { setSectionCapacity(sectionId: $s, totalSeats: 1) { id } }",
            s=lambda w: w.section,
        )
    ),
    "huge-authorization-header": Http(
        body=gql(REGISTER, i=reg()),
        headers={"Authorization": "Bearer " + "a" * 60_000},
        token="none",
    ),
    # REST adapter
    "rest-malformed-json": Http(path="/api/v1/register", raw=lambda w: b"{nope"),
    "rest-body-an-array": Http(path="/api/v1/register", raw=lambda w: b"[]"),
    "rest-section-ids-not-a-list": Http(
        path="/api/v1/register", body=lambda w: {"student_id": w.me, "section_ids": w.section}
    ),
    "rest-ten-thousand-sections": Http(
        path="/api/v1/register",
        body=lambda w: {"student_id": w.me, "section_ids": [UUID_] * 10_000},
    ),
    "rest-student-id-a-number": Http(
        path="/api/v1/register", body=lambda w: {"student_id": 7, "section_ids": [w.section]}
    ),
    "rest-idempotency-key-a-number": Http(
        path="/api/v1/register",
        body=lambda w: {"student_id": w.me, "section_ids": [w.section], "idempotency_key": 5},
    ),
    "rest-another-student": Http(
        path="/api/v1/register/drop",
        body=lambda w: {"student_id": w.other, "section_id": w.section},
    ),
    "rest-text-plain": Http(
        path="/api/v1/register",
        raw=lambda w: b"student_id=1",
        headers={"Content-Type": "text/plain"},
    ),
    "rest-get-on-post": Http(method="GET", path="/api/v1/register"),
    "rest-unknown-path": Http(method="GET", path="/api/v1/nope"),
    "rest-path-traversal": Http(
        method="GET", path="/api/v1/students/..%2F..%2Fetc%2Fpasswd/waitlist"
    ),
    "rest-sql-in-query-string": Http(
        method="GET", path="/api/v1/sections/available?semester_id=%27%20OR%201%3D1%20--"
    ),
    "rest-oversized-body": Http(path="/api/v1/register", raw=lambda w: b" " * (2 * MB)),
    "rest-forged-token": Http(
        path="/api/v1/register",
        body=lambda w: {"student_id": w.me, "section_ids": [w.section]},
        headers={
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "x", "role": "staff", "exp": int(time.time()) + 60}, "", algorithm="none"
            )
        },
        token="none",
    ),
}


async def send(api: Api, world: World, case: Http) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if case.token == "student":
        headers["Authorization"] = f"Bearer {world.token}"
    elif case.token == "staff":
        headers["Authorization"] = f"Bearer {world.staff}"
    headers.update(case.headers)
    content = case.raw(world) if case.raw else None
    if case.body is not None:
        content = json.dumps(case.body(world)).encode()
    return await api.client.request(case.method, case.path, content=content, headers=headers)


def refusal(response: httpx.Response) -> str:
    """What the answer was ('4xx' or the error code); fails on anything else."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    assert_no_internals(response.text)
    if response.status_code >= 400:
        return f"{response.status_code}"
    body = response.json()
    errors = body.get("errors") if isinstance(body, dict) else None
    assert errors, f"not refused: {response.text[:300]}"
    codes = {e.get("extensions", {}).get("code") for e in errors}
    assert codes <= CODES, f"uncoded or internal: {errors}"
    return ",".join(sorted(codes))


async def test_every_bad_http_request_is_refused_with_a_code_or_4xx_and_changes_nothing(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    failures, answers = [], {}
    for name, case in HTTP_CASES.items():
        before = await footprint(api)
        started = time.perf_counter()
        try:
            response = await send(api, world, case)
        except Exception as exc:  # the ASGI transport raises what would be a 500
            failures.append(f"{name}: 500 {type(exc).__name__}: {exc}"[:400])
            continue
        try:
            answers[name] = refusal(response)
            assert time.perf_counter() - started < 5, "answered in reasonable time"
            assert await footprint(api) == before, "Redis and Postgres unchanged"
        except AssertionError as exc:
            failures.append(f"{name}: {str(exc)[:400]}")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, "\n".join(failures)
    assert not errors, f"logged as unexpected: {errors[:3]}"
    print(f"\nbad HTTP requests: {len(answers)} refused, 0 server errors: {answers}")


# -- websocket ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ws:
    """Frames sent after the handshake (str: text, bytes: binary); `init` first unless off."""

    frames: Callable[[World], list[str | bytes]]
    init: dict[str, Any] | str | None = field(default_factory=dict)
    subprotocols: tuple[str, ...] = (PROTOCOL,)


def msg(**fields: Any) -> str:
    return json.dumps(fields)


def sub(query: str, op: str = "1", **variables: Any) -> Callable[[World], list[str | bytes]]:
    return lambda w: [
        msg(
            id=op,
            type="subscribe",
            payload={
                "query": query,
                "variables": {k: v(w) if callable(v) else v for k, v in variables.items()},
            },
        )
    ]


def forged(algorithm: str) -> str:
    claims = {"sub": "x", "role": "staff", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, "" if algorithm == "none" else "y" * 40, algorithm=algorithm)
    return f"Bearer {token}"


WS_CASES: dict[str, Ws] = {
    "no-subprotocol": Ws(frames=lambda w: [], subprotocols=()),
    "unknown-subprotocol": Ws(frames=lambda w: [], subprotocols=("chat",)),
    "legacy-graphql-ws": Ws(frames=lambda w: [], subprotocols=("graphql-ws",)),
    "not-json": Ws(frames=lambda w: ["{nope"], init=None),
    "binary-frame": Ws(frames=lambda w: [b"\x00\x01\x02"], init=None),
    "init-payload-a-string": Ws(frames=lambda w: [], init="hello"),
    "init-twice": Ws(frames=lambda w: [msg(type="connection_init", payload={})]),
    "subscribe-before-init": Ws(frames=sub(SEATS, ids=lambda w: [w.section]), init=None),
    "unknown-message-type": Ws(frames=lambda w: [msg(type="bogus")]),
    "subscribe-without-id": Ws(frames=lambda w: [msg(type="subscribe", payload={"query": SEATS})]),
    "subscribe-without-payload": Ws(frames=lambda w: [msg(id="1", type="subscribe")]),
    "duplicate-operation-id": Ws(frames=lambda w: sub(SEATS, ids=[w.section])(w) * 2),
    "syntax-error": Ws(frames=sub("subscription { seatUpdates(")),
    "unknown-field": Ws(frames=sub("subscription { nothing }")),
    "wrong-variable-type": Ws(frames=sub(SEATS, ids=5)),
    "bad-uuid": Ws(frames=sub(SEATS, ids=["nope"])),
    "too-many-sections": Ws(frames=sub(SEATS, ids=[str(uuid.UUID(int=n)) for n in range(600)])),
    "deep-query": Ws(frames=sub(nested_query(40))),
    "too-many-tokens": Ws(frames=sub("subscription { " + "__typename " * 5000 + "}")),
    "frame-over-the-body-limit": Ws(
        frames=lambda w: [
            msg(
                id="1",
                type="subscribe",
                payload={"query": SEATS, "variables": {"ids": [w.section], "pad": "x" * 2_000_000}},
            )
        ]
    ),
    "alg-none-token": Ws(frames=lambda w: [], init={"Authorization": forged("none")}),
    "forged-signature": Ws(frames=lambda w: [], init={"Authorization": forged("HS256")}),
    "token-not-a-string": Ws(frames=lambda w: [], init={"Authorization": ["Bearer", "x"]}),
    "another-students-waitlist": Ws(
        frames=sub(WAITLIST, s=lambda w: w.other, c=lambda w: w.section), init={"student": True}
    ),
    "waitlist-without-token": Ws(frames=sub(WAITLIST, s=lambda w: w.me, c=lambda w: w.section)),
    "mutation-for-another-student": Ws(
        frames=sub(DROP, i=lambda w: {"studentId": w.other, "sectionId": w.section}),
        init={"student": True},
    ),
}


async def ws_outcome(url: str, world: World, case: Ws) -> str:
    """'closed <code>' or 'error <codes>'; fails on a 1011 close, an uncoded error, data."""
    try:
        async with websockets.connect(
            ws_url(url),
            subprotocols=[Subprotocol(p) for p in case.subprotocols] or None,
            max_size=None,
        ) as ws:
            init = case.init
            if isinstance(init, dict) and init.get("student"):
                init = {"Authorization": f"Bearer {world.token}"}
            if init is not None:
                await ws.send(msg(type="connection_init", payload=init))
            for frame in case.frames(world):
                await ws.send(frame)
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] in ("connection_ack", "ping", "pong"):
                    continue
                if message["type"] == "error":
                    codes = {e.get("extensions", {}).get("code") for e in message["payload"]}
                    assert codes <= CODES, f"uncoded: {message}"
                    assert_no_internals(json.dumps(message))
                    return "error " + ",".join(sorted(codes))
                if message["type"] == "next" and message["payload"].get("errors"):
                    codes = {e["extensions"]["code"] for e in message["payload"]["errors"]}
                    assert codes <= CODES, f"uncoded: {message}"
                    return "error " + ",".join(sorted(codes))
                raise AssertionError(f"not refused: {message}")
    except websockets.ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd else None
        assert code is not None and code != 1011, f"closed with {code}"
        assert 4400 <= code < 4500 or code in (1000, 1002, 1003, 1008, 1009), f"closed {code}"
        return f"closed {code}"
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        assert 400 <= status < 500, status
        return f"http {status}"


async def test_every_bad_websocket_message_is_refused_with_a_code_and_changes_nothing(
    api: Api, world: World, server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    failures, answers = [], {}
    for name, case in WS_CASES.items():
        before = await footprint(api)
        try:
            answers[name] = await ws_outcome(server, world, case)
            assert await footprint(api) == before, "Redis and Postgres unchanged"
        except (AssertionError, TimeoutError) as exc:
            failures.append(f"{name}: {type(exc).__name__} {str(exc)[:300]}")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, "\n".join(failures)
    assert not errors, f"logged as unexpected: {errors[:3]}"
    print(f"\nbad websocket messages: {len(answers)} refused: {answers}")


def test_the_corpus_has_at_least_sixty_bad_requests() -> None:
    total = len(HTTP_CASES) + len(WS_CASES)
    print(f"\nhostile corpus: {len(HTTP_CASES)} HTTP + {len(WS_CASES)} websocket = {total}")
    assert total >= 60


async def test_no_token_or_secret_reaches_a_log_record(
    api: Api, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """The HTTP corpus again, logging at DEBUG: no record holds the JWT secret or a bearer
    token sent, even before the log handler's redaction (test_logs.py tests that)."""
    caplog.set_level(logging.DEBUG)
    for case in HTTP_CASES.values():
        with contextlib.suppress(Exception):
            await send(api, world, case)
    sent = [world.token, world.staff, SECRET]
    leaked = [r.getMessage()[:200] for r in caplog.records for s in sent if s in r.getMessage()]
    assert not leaked, leaked
