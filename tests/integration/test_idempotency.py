"""Idempotency keys: the same key and student within 24 hours returns the first answer."""

from __future__ import annotations

import asyncio

from tests.client import DROP, REGISTER
from tests.conftest import Api, Catalog


async def test_fifty_concurrent_requests_with_one_key_do_the_work_once(
    api: Api, catalog: Catalog
) -> None:
    """Invariant: one place per student; the work happens once, every caller sees its answer."""
    section = await catalog.section(seats=10)
    student = await catalog.student()
    token = api.student_token(student.id)
    variables = {
        "studentId": str(student.id),
        "sectionIds": [str(section.id)],
        "idempotencyKey": "rush-1",
    }
    bodies = await asyncio.gather(*(api.gql(REGISTER, token, i=variables) for _ in range(50)))
    answers = [b["data"]["register"]["results"][0] for b in bodies]
    assert all(a == answers[0] for a in answers)
    assert answers[0]["outcome"] == "ENROLLED" and answers[0]["availableSeats"] == 9
    jobs = await api.container.redis.xlen(api.container.keys.section(section.id).stream)
    assert jobs == 1
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and state.available_seats == 9


async def test_a_replay_after_a_drop_returns_the_first_answer_and_changes_nothing(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=1)
    student = await catalog.student()
    token = api.student_token(student.id)
    register = {
        "studentId": str(student.id),
        "sectionIds": [str(section.id)],
        "idempotencyKey": "k",
    }
    first = await api.gql(REGISTER, token, i=register)
    dropped = await api.gql(
        DROP,
        token,
        i={"studentId": str(student.id), "sectionId": str(section.id), "idempotencyKey": "d"},
    )
    assert dropped["data"]["drop"]["outcome"] == "DROPPED"
    replay = await api.gql(REGISTER, token, i=register)
    assert replay == first
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and state.available_seats == 1
    drop_replay = await api.gql(
        DROP,
        token,
        i={"studentId": str(student.id), "sectionId": str(section.id), "idempotencyKey": "d"},
    )
    assert drop_replay == dropped


async def test_keys_belong_to_one_student(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=5)
    one, two = await catalog.students(2)
    for student in (one, two):
        body = await api.gql(
            REGISTER,
            api.token(),
            i={
                "studentId": str(student.id),
                "sectionIds": [str(section.id)],
                "idempotencyKey": "same",
            },
        )
        assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"


async def test_the_answer_is_kept_for_24_hours(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=5)
    student = await catalog.student()
    await api.gql(
        REGISTER,
        api.token(),
        i={"studentId": str(student.id), "sectionIds": [str(section.id)], "idempotencyKey": "ttl"},
    )
    keys = [
        k async for k in api.container.redis.scan_iter(match=f"{api.container.keys.prefix}idem:*")
    ]
    assert len(keys) == 1
    ttl = await api.container.redis.pttl(keys[0])
    assert 24 * 3600 * 1000 - 60_000 < ttl <= 24 * 3600 * 1000
