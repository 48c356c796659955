"""Cold start and Redis data loss: the live state is rebuilt from Postgres before /ready."""

from __future__ import annotations

import asyncio
import uuid

from infrastructure.container import Container
from tests.client import REGISTER
from tests.conftest import Api, Catalog, Worker, forget_keys, running_app
from tests.invariants import check_postgres, check_redis
from tests.stored import read_stream
from tests.waiting import wait_until


async def _fill(api: Api, catalog: Catalog, seats: int, students: int) -> tuple:
    section = await catalog.section(seats=seats)
    people = await catalog.students(students)
    for person in people:
        await api.gql(
            REGISTER, api.token(), i={"studentId": str(person.id), "sectionIds": [str(section.id)]}
        )
    return section, people


async def test_a_new_process_rebuilds_an_emptied_redis_before_ready(
    api: Api, catalog: Catalog, worker: Worker, settings
) -> None:
    """Invariant: convergence; after the rebuild FIFO continues behind the restored line."""
    section, _ = await _fill(api, catalog, seats=3, students=8)
    await worker.drain()
    await forget_keys(api.container)
    async with running_app(settings) as fresh:
        c = fresh.container
        await check_redis(c, [section.id])
        await check_postgres(c, settings.database_url, [section.id])
        newcomer = await catalog.student()
        body = await fresh.gql(
            REGISTER,
            fresh.token(),
            i={"studentId": str(newcomer.id), "sectionIds": [str(section.id)]},
        )
        assert body["data"]["register"]["results"][0] == {
            "sectionId": str(section.id),
            "outcome": "WAITLISTED",
            "waitlistPosition": 6,
            "availableSeats": 0,
            "reason": None,
        }
        health = (await fresh.client.get("/health")).json()
        assert health["recovery"]["sections"] >= 1
        assert health["recovery"]["persisted_up_to"], "the report names what Postgres held"


async def test_new_stream_ids_sort_after_what_postgres_already_applied(
    api: Api, catalog: Catalog, worker: Worker, settings
) -> None:
    """Invariant: nothing acknowledged is lost after a rebuild (no change hides below the
    workers' watermark)."""
    section, _ = await _fill(api, catalog, seats=2, students=3)
    await worker.drain()
    watermark = await api.container.changes.watermark(
        int(api.container.keys.section(section.id).stream.split("shard-")[1].rstrip("}"))
    )
    await forget_keys(api.container)
    await api.container.state.ensure()
    late = await catalog.student()
    await api.gql(
        REGISTER, api.token(), i={"studentId": str(late.id), "sectionIds": [str(section.id)]}
    )
    ((entry_id, _),) = await read_stream(
        api.container.redis, api.container.keys.section(section.id).stream
    )
    assert watermark is not None
    assert tuple(map(int, entry_id.split("-"))) > tuple(map(int, watermark.split("-")))
    await worker.drain()
    await check_postgres(api.container, settings.database_url, [section.id])


async def test_two_processes_starting_at_once_rebuild_once(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    await _fill(api, catalog, seats=2, students=4)
    await worker.drain()
    # Four fresh processes on a key space no running app watches (its own watcher would
    # otherwise race them to the rebuild).
    fresh = api.container.settings.model_copy(update={"key_prefix": f"t{uuid.uuid4().hex[:12]}:"})
    processes = [Container.build(fresh) for _ in range(4)]
    try:
        reports = await asyncio.gather(*(p.state.ensure() for p in processes))
        assert sum(1 for r in reports if r is not None) == 1
        assert await processes[0].state.missing_shards() == []
    finally:
        await forget_keys(processes[0])
        for process in processes:
            await process.close()


async def test_a_running_app_notices_lost_state_and_refuses_until_rebuilt(
    api: Api, catalog: Catalog, worker: Worker, settings
) -> None:
    section, _ = await _fill(api, catalog, seats=5, students=2)
    await worker.drain()
    await forget_keys(api.container)
    student = await catalog.student()

    async def ready() -> bool:
        return (await api.client.get("/ready")).status_code == 200

    await wait_until(ready, 5, "the app rebuilt its state")
    body = await api.gql(
        REGISTER, api.token(), i={"studentId": str(student.id), "sectionIds": [str(section.id)]}
    )
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    await worker.drain()
    await check_postgres(api.container, settings.database_url, [section.id])


async def test_register_during_a_rebuild_is_unavailable_not_wrong(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=5)
    student = await catalog.student()
    await api.container.redis.delete(api.container.keys.section(section.id).ready)
    body = await api.gql(
        REGISTER, api.token(), i={"studentId": str(student.id), "sectionIds": [str(section.id)]}
    )
    assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
    assert str(uuid.UUID(str(student.id)))  # nothing else to check: no seat was taken
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and state.available_seats == 5
