"""Concurrency: hundreds of simultaneous registrations for a few seats."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.client import DROP, REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.invariants import check_postgres, check_redis


async def _register_all(api: Api, students: list, section_id: str) -> list[dict]:
    async def one(student) -> dict:
        body = await api.gql(
            REGISTER,
            api.student_token(student.id),
            i={"studentId": str(student.id), "sectionIds": [section_id]},
        )
        assert "errors" not in body, body
        return body["data"]["register"]["results"][0]

    return list(await asyncio.gather(*(one(s) for s in students)))


async def test_300_students_race_for_30_seats(
    api: Api, catalog: Catalog, worker: Worker, settings
) -> None:
    """Invariant: no oversell, FIFO positions 1..270, Postgres holds the same after draining."""
    section = await catalog.section(seats=30)
    students = await catalog.students(300)
    results = await _register_all(api, students, str(section.id))

    enrolled = [r for r in results if r["outcome"] == "ENROLLED"]
    waitlisted = [r for r in results if r["outcome"] == "WAITLISTED"]
    assert len(enrolled) == 30
    assert len(waitlisted) == 270
    assert sorted(r["waitlistPosition"] for r in waitlisted) == list(range(1, 271))
    print(
        f"\n300-for-30: enrolled={len(enrolled)} waitlisted={len(waitlisted)} "
        f"positions=1..{max(r['waitlistPosition'] for r in waitlisted)}"
    )

    await check_redis(api.container, [section.id])
    await worker.drain()
    counts = await check_postgres(api.container, settings.database_url, [section.id])

    by_student = {s.id: r for s, r in zip(students, results, strict=True)}
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT student_id FROM registrations WHERE section_id = $1 AND status = 'enrolled'",
            section.id,
        )
        line = await connection.fetch(
            "SELECT student_id FROM waitlist WHERE section_id = $1 ORDER BY position", section.id
        )
    finally:
        await connection.close()
    assert {r["student_id"] for r in rows} == {
        s for s, r in by_student.items() if r["outcome"] == "ENROLLED"
    }
    assert [by_student[r["student_id"]]["waitlistPosition"] for r in line] == list(range(1, 271))
    print(f"postgres: enrolled={len(rows)} waitlist={len(line)} {counts}")


async def test_dropping_ten_promotes_the_first_ten_in_order(
    api: Api, catalog: Catalog, worker: Worker, settings
) -> None:
    """Invariant: FIFO promotion; the rest of the line moves up by exactly ten."""
    section = await catalog.section(seats=30)
    students = await catalog.students(60)
    results = await _register_all(api, students, str(section.id))
    line = sorted(
        (r["waitlistPosition"], s)
        for s, r in zip(students, results, strict=True)
        if r["outcome"] == "WAITLISTED"
    )
    holders = [s for s, r in zip(students, results, strict=True) if r["outcome"] == "ENROLLED"]

    for holder in holders[:10]:
        dropping = {"studentId": str(holder.id), "sectionId": str(section.id)}
        body = await api.gql(DROP, api.student_token(holder.id), i=dropping)
        assert body["data"]["drop"] == {**dropping, "outcome": "DROPPED", "availableSeats": 0}

    for _, promoted in line[:10]:
        standing = await api.container.seats.standing(promoted.id, section.id)
        assert standing is not None and standing.status.value == "ENROLLED"
    for position, student in line[10:]:
        (rank,) = await api.container.seats.ranks(student.id, [section.id])
        assert rank == position - 10
    await check_redis(api.container, [section.id])
    await worker.drain()
    await check_postgres(api.container, settings.database_url, [section.id])
