"""Fuzzing: thousands of generated requests find no server error.

GraphQL: hypothesis-graphql writes queries and mutations from the served schema, valid ones
(POSITIVE) and ones with one schema violation each (NEGATIVE), with ids of real rows mixed
with random and malformed ones, sent as staff, as a student and without a token. REST:
Hypothesis writes JSON bodies (right keys with any values, and any JSON at all) for the
register and drop endpoints and path values for the student endpoints.

The examples are drawn first and then sent concurrently (Hypothesis does not drive the
event loop); a failure names the request. A server error is a status of 500 or more other
than 503, an INTERNAL code, an exception out of the app, or an ERROR logged."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import string
from collections.abc import Callable
from datetime import UTC
from typing import Any
from urllib.parse import quote

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from tests.conftest import Api, Catalog

COUNTS = {
    "queries": int(os.environ.get("FUZZ_QUERIES", "400")),
    "bad_queries": int(os.environ.get("FUZZ_BAD_QUERIES", "200")),
    "mutations": int(os.environ.get("FUZZ_MUTATIONS", "600")),
    "bad_mutations": int(os.environ.get("FUZZ_BAD_MUTATIONS", "400")),
    "rest": int(os.environ.get("FUZZ_REST", "600")),
}
CONCURRENCY = 8
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)


def draw(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples of a strategy, without shrinking or a saved database."""
    found: list[Any] = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found


def scalars(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    uuids = st.sampled_from(ids) | st.uuids().map(str) | st.text(max_size=40)
    when = st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    return {
        "UUID": uuids.map(nodes.String),
        "Date": (st.dates().map(str) | st.text(max_size=12)).map(nodes.String),
        "DateTime": (when | st.text(max_size=30)).map(nodes.String),
    }


@pytest.fixture
async def ids(api: Api, catalog: Catalog) -> list[str]:
    """Real rows for the generated ids to hit: a semester, a course, sections, students."""
    semester = await catalog.semester()
    course = await catalog.course()
    sections = [await catalog.section(seats=3, semester=semester, course=course) for _ in range(3)]
    students = await catalog.students(4)
    return [str(x.id) for x in (semester, course, *sections, *students)]


def graphql_requests(api: Api, ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    schema = graphql.build_schema(graphql.print_schema(_served_schema(api)))
    custom = scalars(ids)
    made = []
    for name, maker, mode in (
        ("queries", queries, Mode.POSITIVE),
        ("bad_queries", queries, Mode.NEGATIVE),
        ("mutations", mutations, Mode.POSITIVE),
        ("bad_mutations", mutations, Mode.NEGATIVE),
    ):
        strategy = maker(schema, custom_scalars=custom, mode=mode)
        made += [(name, {"query": q}) for q in draw(strategy, COUNTS[name])]
    return made


def _served_schema(api: Api) -> graphql.GraphQLSchema:
    """The schema of the app's GraphQL view (limits and settings as served)."""
    for route in api.app.routes:
        endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
        schema = getattr(endpoint, "schema", None)
        if schema is not None:
            return schema._schema
    raise AssertionError("no GraphQL route")


def rest_requests(ids: list[str]) -> list[tuple[str, tuple[str, str, Any]]]:
    some_id = st.sampled_from(ids) | st.uuids().map(str)
    register = st.fixed_dictionaries(
        {"student_id": some_id | JSON, "section_ids": st.lists(some_id, max_size=12) | JSON},
        optional={"idempotency_key": st.text(max_size=200) | JSON},
    )
    drop = st.fixed_dictionaries({"student_id": some_id | JSON, "section_id": some_id | JSON})
    path = st.text(alphabet=string.printable, max_size=60) | some_id
    requests = st.one_of(
        st.tuples(st.just("POST"), st.just("/api/v1/register"), register | JSON),
        st.tuples(st.just("POST"), st.just("/api/v1/register/drop"), drop | JSON),
        st.tuples(
            st.just("GET"),
            st.sampled_from(["/api/v1/students/{}/registrations", "/api/v1/students/{}/waitlist"]),
            path,
        ),
        st.tuples(st.just("GET"), st.just("/api/v1/sections/available?semester_id={}"), path),
    )
    return [("rest", r) for r in draw(requests, COUNTS["rest"])]


def server_error(response: httpx.Response) -> str | None:
    if response.status_code >= 500 and response.status_code != 503:
        return f"{response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return None if response.status_code >= 400 else f"not JSON: {response.text[:200]}"
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        code = error.get("extensions", {}).get("code") or error.get("code")
        if code == "INTERNAL":
            return f"INTERNAL: {error}"
    return None


async def test_thousands_of_generated_requests_find_no_server_error(
    api: Api, ids: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR)
    requests: list[tuple[str, Any]] = [*graphql_requests(api, ids), *rest_requests(ids)]
    tokens = [api.token(), api.student_token(ids[-1]), None]
    gate = asyncio.Semaphore(CONCURRENCY)
    found: list[str] = []
    statuses: dict[str, int] = {}

    async def send(n: int, kind: str, request: Any) -> None:
        token = tokens[n % len(tokens)]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        call: Callable[[], Any]
        if kind == "rest":
            method, path, value = request
            if method == "GET":
                text = value if isinstance(value, str) else json.dumps(value)
                url = path.format(quote(text, safe=""))  # what a client puts on the wire
                call = lambda: api.client.get(url, headers=headers)  # noqa: E731
            else:
                call = lambda: api.client.post(path, json=value, headers=headers)  # noqa: E731
        else:
            call = lambda: api.client.post("/graphql", json=request, headers=headers)  # noqa: E731
        async with gate:
            try:
                response = await call()
            except Exception as exc:  # out of the app: a 500 behind a real server
                found.append(f"{kind} {request!r:.300}: {type(exc).__name__}: {exc}")
                return
        statuses[str(response.status_code)] = statuses.get(str(response.status_code), 0) + 1
        problem = server_error(response)
        if problem:
            found.append(f"{kind} {request!r:.300}: {problem}")

    await asyncio.gather(*(send(n, kind, r) for n, (kind, r) in enumerate(requests)))
    logged = [r.getMessage()[:300] for r in caplog.records if r.levelno >= logging.ERROR]
    by_kind = {k: sum(1 for kind, _ in requests if kind == k) for k in COUNTS}
    print(
        f"\nfuzz: {len(requests)} generated requests {by_kind}; statuses {statuses}; "
        f"server errors {len(found)}; errors logged {len(logged)}"
    )
    assert not found, "\n".join(found[:10])
    assert not logged, logged[:5]
    assert len(requests) >= 2000 or os.environ.get("FUZZ_QUERIES"), "a smaller run was asked for"
