"""Graceful overload (infrastructure/http/admission.py), on a real uvicorn socket. Overload
is made step by step, not by load: the admitted requests are held inside their saga
(tests/steps.py), so the limit is full for as long as the test wants; the next request is
then refused at once (503, UNAVAILABLE, retryAfter, Retry-After) and nothing it asked for
has changed, in Redis nor, once the held ones are let go and persisted, in Postgres."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import httpx
import pytest

from infrastructure.cli.worker import make_persister
from infrastructure.http.admission import Admission
from infrastructure.settings import Settings
from tests.client import REGISTER
from tests.conftest import Api, Catalog
from tests.servers import serve
from tests.steps import Held, Hold, of_student, registrar_with
from tests.waiting import wait_until

REST_REGISTER = "/api/v1/register"
SECTION = "query($id: UUID!) { section(id: $id) { id availableSeats } }"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Two requests in flight, no queue, one staff request; a lag and a latency no busy CI
    machine reaches, so the limit stays put (tests/unit/test_admission.py moves it)."""
    return settings.model_copy(
        update={
            "admission_limit": 2,
            "admission_queue": 0,
            "admission_staff_limit": 1,
            "admission_lag_ms": 60_000,
            "admission_latency_ms": 600_000,
            "admission_retry_after": 2,
        }
    )


def admission(api: Api) -> Admission:
    found = api.app.state.admission
    assert isinstance(found, Admission)
    return found


@contextlib.asynccontextmanager
async def holding(api: Api, *students: Any) -> AsyncIterator[list[Hold]]:
    """The app's register held just before its rules' reserve for each of `students` (after
    its idempotency key is taken): each such request stays admitted until let go."""
    holds = [Hold("reserve", of_student(s.id)) for s in students]
    registrar = registrar_with(api.container.registrar, rules=Held(api.container.rules, *holds))
    services = api.app.state.services
    api.app.state.services = replace(services, registrar=registrar)
    try:
        yield holds
    finally:
        for hold in holds:
            hold.go.set()
        api.app.state.services = services


@contextlib.asynccontextmanager
async def persisting(api: Api) -> AsyncIterator[None]:
    persister = make_persister(api.container, f"test-{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def drained(api: Api) -> None:
    async def done() -> bool:
        lag = await api.container.stream.lag(api.container.keys.shards)
        return bool(lag["unapplied"] == 0 and lag["pending"] == 0)

    await wait_until(done, 30, "the streams drained", interval=0.05)


async def registered(settings: Settings, section: Any) -> set[uuid.UUID]:
    connection = await asyncpg.connect(settings.postgres)
    try:
        rows = await connection.fetch(
            "SELECT student_id FROM registrations WHERE section_id = $1", section.id
        )
    finally:
        await connection.close()
    return {r["student_id"] for r in rows}


async def key_space(api: Api) -> dict[bytes, bytes | None]:
    """Every key of this test and its value as DUMP serializes it."""
    redis = api.container.redis
    keys = [k async for k in redis.scan_iter(match=f"{api.container.keys.prefix}*", count=10_000)]
    return {k: await redis.dump(k) for k in sorted(keys)}


def rest_body(student: Any, section: Any, key: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"student_id": str(student.id), "section_ids": [str(section.id)]}
    if key is not None:
        body["idempotency_key"] = key
    return body


def gql_register(student: Any, section: Any, key: str) -> dict[str, Any]:
    variables = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
    return {"query": REGISTER, "variables": {"i": {**variables, "idempotencyKey": key}}}


def shed_count(metrics: str) -> float:
    """This process's refusals for a full queue, as /metrics tells them."""
    for line in metrics.splitlines():
        if line.startswith('coursereg_admission_shed_total{reason="queue"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def as_student(api: Api, student: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.student_token(student.id)}"}


def assert_busy_rest(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    body = response.json()
    assert body["success"] is False
    (error,) = body["errors"]
    assert error["code"] == "UNAVAILABLE" and error["retryAfter"] == 2, error


def assert_busy_graphql(response: httpx.Response, media: str = "application/json") -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"].startswith(media)
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE", "retryAfter": 2}, error
    assert "busy" in error["message"]


async def test_a_full_limit_refuses_at_once_changes_nothing_and_the_held_ones_complete(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    section = await catalog.section(seats=5)
    a, b, c = await catalog.students(3)
    async with serve(api.app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        async with holding(api, a, b) as holds:
            held = [
                asyncio.create_task(
                    client.post(
                        REST_REGISTER, json=rest_body(s, section), headers=as_student(api, s)
                    )
                )
                for s in (a, b)
            ]
            for hold in holds:
                await hold.reached()
            assert admission(api).in_flight == 2
            before = await key_space(api)
            shed = shed_count((await client.get("/metrics")).text)

            refused = await client.post(
                REST_REGISTER, json=rest_body(c, section, "c-1"), headers=as_student(api, c)
            )
            assert_busy_rest(refused)
            assert_busy_graphql(
                await client.post(
                    "/graphql", json=gql_register(c, section, "c-2"), headers=as_student(api, c)
                )
            )
            spec = {**as_student(api, c), "Accept": "application/graphql-response+json"}
            assert_busy_graphql(
                await client.post("/graphql", json=gql_register(c, section, "c-3"), headers=spec),
                media="application/graphql-response+json",
            )
            assert await key_space(api) == before, "a refused request changed Redis"
            assert not any(t.done() for t in held)

            # Never shed before student writes: the probes, and a staff read (its lane).
            for probe in ("/live", "/ready", "/health", "/metrics"):
                assert (await client.get(probe)).status_code == 200, probe
            staff = {"Authorization": f"Bearer {api.token()}"}
            read = await client.post(
                "/graphql",
                json={"query": SECTION, "variables": {"id": str(section.id)}},
                headers=staff,
            )
            assert read.status_code == 200 and read.json()["data"]["section"]["availableSeats"] == 5
            assert shed_count((await client.get("/metrics")).text) == shed + 3

            for hold in holds:
                hold.go.set()
            answers = await asyncio.gather(*held)
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["results"][0]["status"] == "enrolled"
        assert admission(api).in_flight == 0

        async with persisting(api):
            await drained(api)
            assert await registered(settings, section) == {a.id, b.id}, "only the admitted"
            # The refused request, retried with its idempotency key, runs now.
            retried = await client.post(
                REST_REGISTER, json=rest_body(c, section, "c-1"), headers=as_student(api, c)
            )
            assert retried.status_code == 200, retried.text
            assert retried.json()["data"]["results"][0]["status"] == "enrolled"
            again = await client.post(
                "/graphql", json=gql_register(c, section, "c-2"), headers=as_student(api, c)
            )
            assert again.json()["data"]["register"]["results"][0]["outcome"] == "ALREADY_ENROLLED"
            await drained(api)
            assert await registered(settings, section) == {a.id, b.id, c.id}


async def test_a_queued_request_waits_for_a_place_and_the_queue_past_its_bound_is_refused(
    api: Api, catalog: Catalog
) -> None:
    """Limit one, a queue of one with a long deadline: the second request waits (admitted
    when the first is let go), the third finds the queue full and is refused at once."""
    gate = admission(api)
    gate.settings = replace(gate.settings, limit=1, queue=1, wait_seconds=30.0)
    section = await catalog.section(seats=5)
    a, b, c = await catalog.students(3)
    async with (
        serve(api.app) as url,
        httpx.AsyncClient(base_url=url, timeout=60) as client,
        holding(api, a) as (hold,),
    ):
        first = asyncio.create_task(
            client.post(REST_REGISTER, json=rest_body(a, section), headers=as_student(api, a))
        )
        await hold.reached()
        second = asyncio.create_task(
            client.post(REST_REGISTER, json=rest_body(b, section), headers=as_student(api, b))
        )
        await wait_until(lambda: len(gate._queue) == 1, 10, "the second request queued")
        refused = await client.post(
            REST_REGISTER, json=rest_body(c, section), headers=as_student(api, c)
        )
        assert_busy_rest(refused)
        assert not second.done(), "the queued request waits for a place"
        hold.go.set()
        for answer in await asyncio.gather(first, second):
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["results"][0]["status"] == "enrolled"
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and state.available_seats == 3


async def test_a_queued_request_past_its_deadline_is_refused_before_it_runs(
    api: Api, catalog: Catalog
) -> None:
    gate = admission(api)
    gate.settings = replace(gate.settings, limit=1, queue=1, wait_seconds=0.2)
    section = await catalog.section(seats=5)
    a, b = await catalog.students(2)
    async with serve(api.app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:
        async with holding(api, a) as (hold,):
            first = asyncio.create_task(
                client.post(REST_REGISTER, json=rest_body(a, section), headers=as_student(api, a))
            )
            await hold.reached()
            before = await key_space(api)
            late = await client.post(
                "/graphql", json=gql_register(b, section, "b-1"), headers=as_student(api, b)
            )
            assert_busy_graphql(late)
            assert await key_space(api) == before
            assert not gate._queue
            hold.go.set()
            assert (await first).status_code == 200
        retried = await client.post(
            "/graphql", json=gql_register(b, section, "b-1"), headers=as_student(api, b)
        )
        assert retried.json()["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
