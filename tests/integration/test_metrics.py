"""/metrics: Prometheus's text format with every family an operator needs, and counters that
move when students register and drop. Workers serve their own /metrics port."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from infrastructure.cli.ops import streams_lag
from infrastructure.redis.keys import CONSUMER_GROUP, shard_of
from infrastructure.settings import Settings
from tests.client import DROP, REGISTER
from tests.conftest import STAFF, Api, Catalog, Worker
from tests.servers import free_port, replica_env, ws_url
from tests.waiting import wait_until
from tests.wsclient import SEAT_UPDATES, GqlSocket

FAMILIES = {
    "coursereg_http_requests": "counter",
    "coursereg_http_request_duration_seconds": "histogram",
    "coursereg_graphql_operations": "counter",
    "coursereg_graphql_operation_duration_seconds": "histogram",
    "coursereg_register_outcomes": "counter",
    "coursereg_drop_outcomes": "counter",
    "coursereg_stream_unapplied": "gauge",
    "coursereg_stream_pending": "gauge",
    "coursereg_stream_oldest_age_seconds": "gauge",
    "coursereg_dead_letters": "gauge",
    "coursereg_live_listeners": "gauge",
    "coursereg_live_channels": "gauge",
    "coursereg_websocket_connections": "gauge",
    "coursereg_state_rebuild_seconds": "gauge",
    "coursereg_state_rebuild_sections": "gauge",
    "coursereg_worker_batch_size": "histogram",
    "coursereg_worker_batch_duration_seconds": "histogram",
    "coursereg_worker_changes_applied": "counter",
    "coursereg_worker_dead_lettered": "counter",
}

Samples = list[tuple[str, dict[str, str], float]]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    kinds, samples = {}, []
    for family in text_string_to_metric_families(text):
        kinds[family.name] = family.type
        samples += [(s.name, s.labels, s.value) for s in family.samples]
    return kinds, samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for sample, found, value in samples
        if sample == name and all(found.get(k) == v for k, v in labels.items())
    )


async def scrape(api: Api) -> Samples:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)[1]


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


async def test_metrics_expose_every_family_an_operator_needs(api: Api) -> None:
    response = await api.client.get("/metrics")
    kinds, samples = parse(response.text)
    for name, kind in FAMILIES.items():
        assert kinds.get(name) == kind, (name, kinds.get(name))
    shards = {labels["shard"] for name, labels, _ in samples if name == "coursereg_stream_pending"}
    assert shards == {str(s) for s in range(api.container.keys.shards)}
    report = await api.container.state.last_report()
    assert report is not None
    assert total(samples, "coursereg_state_rebuild_seconds") == report["seconds"]


async def _register(api: Api, student: Any, *sections: Any) -> list[str]:
    body = await api.gql(
        REGISTER,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionIds": [str(s.id) for s in sections]},
    )
    return [r["outcome"] for r in body["data"]["register"]["results"]]


async def test_register_and_drop_move_the_counters_and_the_stream_gauges(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=1)
    first, second = await catalog.students(2)
    shard = str(shard_of(section.id, api.container.keys.shards))
    before = await scrape(api)

    assert await _register(api, first, section) == ["ENROLLED"]
    assert await _register(api, second, section) == ["WAITLISTED"]
    body = await api.gql(
        DROP,
        api.student_token(first.id),
        i={"studentId": str(first.id), "sectionId": str(section.id)},
    )
    assert body["data"]["drop"]["outcome"] == "DROPPED"
    rest = await api.client.get(
        f"/api/v1/students/{second.id}/registrations",
        headers={"Authorization": f"Bearer {api.student_token(second.id)}"},
    )
    assert rest.status_code == 200
    await api.gql("{ nosuchfield }")
    after = await scrape(api)

    register = ("coursereg_register_outcomes_total", "coursereg_drop_outcomes_total")
    assert moved(before, after, register[0], outcome="ENROLLED") == 1
    assert moved(before, after, register[0], outcome="WAITLISTED") == 1
    assert moved(before, after, register[1], outcome="DROPPED") == 1
    ops = "coursereg_graphql_operations_total"
    assert moved(before, after, ops, type="mutation", operation="register", result="ok") == 2
    assert moved(before, after, ops, type="mutation", operation="drop", result="ok") == 1
    assert moved(before, after, ops, operation="invalid", result="error") == 1
    latency = "coursereg_graphql_operation_duration_seconds_count"
    assert moved(before, after, latency, type="mutation", operation="register") == 2
    http = "coursereg_http_requests_total"
    assert moved(before, after, http, route="/graphql", method="POST", status="200") == 4
    route = "/api/v1/students/{student_id}/registrations"
    assert moved(before, after, http, route=route, method="GET", status="200") == 1
    assert moved(before, after, "coursereg_http_request_duration_seconds_count", route=route) == 1
    # Nobody persists yet: enroll, join, drop and the promotion wait in the shard's stream.
    assert total(after, "coursereg_stream_unapplied", shard=shard) == 4
    assert total(after, "coursereg_stream_oldest_age_seconds", shard=shard) > 0


async def test_worker_batches_are_measured_and_the_lag_drains(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    sections = [await catalog.section(seats=5) for _ in range(3)]
    students = await catalog.students(6)
    before = await scrape(api)
    for student in students:
        await _register(api, student, *sections)
    await worker.drain()
    after = await scrape(api)
    assert moved(before, after, "coursereg_worker_changes_applied_total") == 18
    assert moved(before, after, "coursereg_worker_batch_size_sum") == 18
    assert moved(before, after, "coursereg_worker_batch_duration_seconds_count") >= 1
    assert total(after, "coursereg_stream_unapplied") == 0
    assert total(after, "coursereg_stream_pending") == 0
    assert total(after, "coursereg_stream_oldest_age_seconds") == 0


async def test_live_subscribers_and_websockets_are_counted(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=3)
    before = await scrape(api)
    async with GqlSocket.open(ws_url(server)) as socket:
        operation = await socket.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        await socket.data(operation)
        during = await scrape(api)
    assert moved(before, during, "coursereg_websocket_connections") == 1
    assert moved(before, during, "coursereg_live_listeners") >= 1
    assert moved(before, during, "coursereg_live_channels") >= 1

    async def uncounted() -> bool:
        connections = "coursereg_websocket_connections"
        return total(await scrape(api), connections) == total(before, connections)

    await wait_until(uncounted, 2.5, "the closed websocket no longer counted")


def _families(text: str) -> Iterable[str]:
    return (family.name for family in text_string_to_metric_families(text))


async def test_a_worker_process_serves_its_own_metrics(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    section = await catalog.section(seats=2)
    (student,) = await catalog.students(1)
    port = free_port()
    env = replica_env(settings, free_port())
    process = subprocess.Popen(
        [sys.executable, "-m", "infrastructure.cli", "worker", "--metrics-port", str(port)],
        env=env,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            assert await _register(api, student, section) == ["ENROLLED"]
            for _ in range(200):
                try:
                    text = (await client.get(url)).text
                except httpx.HTTPError:
                    text = ""
                if total(parse(text)[1], "coursereg_worker_changes_applied_total") >= 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"the worker's {url} never counted the change")
        assert "coursereg_worker_batch_size" in set(_families(text))
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(process.wait, 20)
    assert code == 0


async def test_the_streams_lag_counts_a_read_but_unacknowledged_change_once(
    api: Api, catalog: Catalog
) -> None:
    """`unapplied` is the stream's length, pending entries included (acknowledged ones are
    trimmed): `reconcile --wait` and the bench count the lag without adding pending again."""
    section = await catalog.section(5)
    students = await catalog.students(3)
    for student in students:
        await api.container.registrar.register(STAFF, student.id, [section.id])
    stream = api.container.keys.stream(shard_of(section.id, api.container.keys.shards))
    await api.container.redis.xreadgroup(CONSUMER_GROUP, "reader", {stream: ">"}, count=2)

    lag = await api.container.stream.lag(api.container.keys.shards)
    assert (lag["unapplied"], lag["pending"]) == (3, 2)
    assert await streams_lag(api.container) == 3
