"""Across replicas: two `coursereg serve` processes sharing one database and one Redis key
space; a change made through either reaches the subscribers of the other."""

from __future__ import annotations

import statistics
import time

import httpx

from tests.client import REGISTER
from tests.conftest import Api, Catalog
from tests.servers import replicas, ws_url
from tests.wsclient import SEAT_UPDATES, GqlSocket


async def test_a_change_through_one_replica_reaches_a_subscriber_of_the_other(
    api: Api, catalog: Catalog, settings
) -> None:
    section = await catalog.section(seats=30)
    students = await catalog.students(20)
    async with (
        replicas(settings, 2) as (a, b),
        GqlSocket.open(ws_url(b)) as on_b,
        GqlSocket.open(ws_url(a)) as on_a,
        httpx.AsyncClient(base_url=a) as through_a,
    ):
        op_b = await on_b.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        op_a = await on_a.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await on_b.data(op_b))["availableSeats"] == 30
        await on_a.data(op_a)
        latencies = []
        for student in students:
            started = time.perf_counter()
            response = await through_a.post(
                "/graphql",
                json={
                    "query": REGISTER,
                    "variables": {
                        "i": {"studentId": str(student.id), "sectionIds": [str(section.id)]}
                    },
                },
                headers={"Authorization": f"Bearer {api.student_token(student.id)}"},
            )
            result = response.json()["data"]["register"]["results"][0]
            update = await on_b.data(op_b)
            latencies.append(time.perf_counter() - started)
            assert update["availableSeats"] == result["availableSeats"]
            assert (await on_a.data(op_a)) == update
    assert update["availableSeats"] == 10
    p50, worst = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(f"\nreplica A mutation -> replica B push: p50 {p50:.1f} ms, max {worst:.1f} ms")
