"""The REST adapter of reference/rest-api.md: its five endpoints, envelope shapes, result
statuses, the Idempotency-Key header, and 400 / 404 for a client's mistakes. Registrations
and waitlists are read from Postgres (after draining the streams), ranks live from Redis."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from domain.model import SectionSetup
from infrastructure.settings import Settings
from tests.conftest import Api, Catalog, Worker, running_app
from tests.footprint import assert_no_internals, footprint

REGISTER = "/api/v1/register"
DROP = "/api/v1/register/drop"
ENVELOPE_KEYS = {"success", "message", "data", "errors"}


@dataclass
class World:
    """`tight` has one seat, `roomy` three, `closed` is outside its registration window."""

    semester: Any
    tight: Any
    roomy: Any
    closed: Any
    students: list[Any]


@pytest.fixture
async def world(api: Api, catalog: Catalog) -> World:
    now = datetime.now(UTC)
    semester = await catalog.semester()
    tight = await catalog.section(seats=1, semester=semester)
    roomy = await catalog.section(seats=3, semester=semester)
    past = await catalog.semester(now - timedelta(days=9), now - timedelta(days=2))
    closed = await catalog.section(seats=3, semester=past)
    return World(semester, tight, roomy, closed, await catalog.students(3))


def as_staff(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token()}"}


def as_student(api: Api, student: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.student_token(student.id)}"}


def envelope(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_no_internals(response.text)
    body = response.json()
    assert set(body) <= ENVELOPE_KEYS, body
    assert body["success"] is (status < 400)
    assert isinstance(body["message"], str) and body["message"]
    if status >= 400:
        assert "data" not in body
        assert body["errors"] and all("code" in e and "message" in e for e in body["errors"])
    else:
        assert "errors" not in body
    return body


async def register(
    api: Api, student: Any, sections: list[Any], headers: dict[str, str] | None = None, **more: Any
) -> httpx.Response:
    body = {"student_id": str(student.id), "section_ids": [str(s.id) for s in sections], **more}
    return await api.client.post(REGISTER, json=body, headers=headers or as_student(api, student))


async def drop(api: Api, student: Any, section: Any) -> httpx.Response:
    body = {"student_id": str(student.id), "section_id": str(section.id)}
    return await api.client.post(DROP, json=body, headers=as_student(api, student))


async def test_register_answers_enrolled_then_waitlisted_with_a_position(
    api: Api, world: World
) -> None:
    first, second, third = world.students
    body = envelope(await register(api, first, [world.tight, world.roomy]), 200)
    assert body["data"] == {
        "results": [
            {"section_id": str(world.tight.id), "status": "enrolled", "message": "Enrolled"},
            {"section_id": str(world.roomy.id), "status": "enrolled", "message": "Enrolled"},
        ]
    }
    for student, position in ((second, 1), (third, 2)):
        body = envelope(await register(api, student, [world.tight]), 200)
        (result,) = body["data"]["results"]
        assert result["status"] == "waitlisted"
        assert result["waitlist_position"] == position
        assert result["section_id"] == str(world.tight.id)


async def test_register_again_answers_already_registered_with_the_waitlist_position(
    api: Api, world: World
) -> None:
    first, second, _ = world.students
    envelope(await register(api, first, [world.tight]), 200)
    envelope(await register(api, second, [world.tight]), 200)
    before = await footprint(api)
    enrolled = envelope(await register(api, first, [world.tight]), 200)["data"]["results"]
    waiting = envelope(await register(api, second, [world.tight]), 200)["data"]["results"]
    assert [(r["status"], r.get("waitlist_position")) for r in enrolled] == [
        ("already_registered", None)
    ]
    assert [(r["status"], r.get("waitlist_position")) for r in waiting] == [
        ("already_registered", 1)
    ]
    assert await footprint(api) == before


async def test_a_rejected_section_is_failed_with_the_reason_in_its_message(
    api: Api, world: World
) -> None:
    student = world.students[0]
    unknown = uuid.uuid4()
    response = await api.client.post(
        REGISTER,
        json={
            "student_id": str(student.id),
            "section_ids": [str(world.closed.id), str(unknown), str(world.roomy.id)],
        },
        headers=as_student(api, student),
    )
    results = envelope(response, 200)["data"]["results"]
    assert [(r["section_id"], r["status"], r["message"]) for r in results] == [
        (str(world.closed.id), "failed", "REGISTRATION_CLOSED"),
        (str(unknown), "failed", "SECTION_NOT_FOUND"),
        (str(world.roomy.id), "enrolled", "Enrolled"),
    ]


async def test_the_idempotency_key_header_replays_the_first_answer_and_refuses_other_input(
    api: Api, world: World
) -> None:
    first, second, _ = world.students
    key = {"Idempotency-Key": "rest-key-1"}
    envelope(await register(api, first, [world.tight]), 200)
    once = await register(api, second, [world.tight], {**as_student(api, second), **key})
    assert envelope(once, 200)["data"]["results"][0]["waitlist_position"] == 1
    after_once = await footprint(api)
    twice = await register(api, second, [world.tight], {**as_student(api, second), **key})
    assert twice.json() == once.json()
    other = await register(api, second, [world.roomy], {**as_student(api, second), **key})
    assert envelope(other, 400)["errors"][0]["code"] == "BAD_USER_INPUT"
    assert await footprint(api) == after_once


async def test_the_idempotency_key_in_the_body_replays_the_first_answer(
    api: Api, world: World
) -> None:
    student = world.students[0]
    once = await register(api, student, [world.roomy], idempotency_key="body-key")
    twice = await register(api, student, [world.roomy], idempotency_key="body-key")
    assert envelope(once, 200) == envelope(twice, 200)
    assert once.json()["data"]["results"][0]["status"] == "enrolled"
    (state,) = await api.container.seats.states([world.roomy.id])
    assert state is not None and state.available_seats == 2


async def test_drop_answers_course_dropped_and_promotes_the_head_of_the_waitlist(
    api: Api, world: World
) -> None:
    first, second, third = world.students
    for student in world.students:
        envelope(await register(api, student, [world.tight]), 200)
    body = envelope(await drop(api, first, world.tight), 200)
    assert body == {"success": True, "message": "Course dropped successfully"}
    promoted = await api.container.seats.standing(second.id, world.tight.id)
    assert promoted is not None and promoted.status.value == "ENROLLED"
    assert await api.container.seats.ranks(third.id, [world.tight.id]) == [1]
    body = envelope(await drop(api, third, world.tight), 200)
    assert body == {"success": True, "message": "Removed from the waitlist"}


async def test_drop_of_a_section_the_student_does_not_hold_is_404_and_changes_nothing(
    api: Api, world: World
) -> None:
    student = world.students[0]
    before = await footprint(api)
    body = envelope(await drop(api, student, world.roomy), 404)
    assert body["errors"][0]["code"] == "NOT_FOUND"
    assert await footprint(api) == before


async def test_registrations_list_the_students_rows_from_postgres_after_draining(
    api: Api, world: World, worker: Worker
) -> None:
    student = world.students[0]
    envelope(await register(api, student, [world.tight, world.roomy]), 200)
    envelope(await drop(api, student, world.roomy), 200)
    await worker.drain()
    response = await api.client.get(
        f"/api/v1/students/{student.id}/registrations", headers=as_student(api, student)
    )
    rows = envelope(response, 200)["data"]
    by_section = {r["section_id"]: r for r in rows}
    assert set(by_section) == {str(world.tight.id), str(world.roomy.id)}
    enrolled, dropped = by_section[str(world.tight.id)], by_section[str(world.roomy.id)]
    assert enrolled["status"] == "enrolled" and enrolled["dropped_date"] is None
    assert dropped["status"] == "dropped"
    registered = datetime.fromisoformat(dropped["registration_date"])
    assert registered <= datetime.fromisoformat(dropped["dropped_date"])
    assert all(uuid.UUID(r["registration_id"]) for r in rows)


async def test_waitlist_lists_entries_with_live_positions(
    api: Api, world: World, worker: Worker
) -> None:
    first, second, third = world.students
    for student in world.students:
        envelope(await register(api, student, [world.tight]), 200)
    await worker.drain()
    path = f"/api/v1/students/{third.id}/waitlist"
    entries = envelope(await api.client.get(path, headers=as_student(api, third)), 200)["data"]
    assert [(e["section_id"], e["position"]) for e in entries] == [(str(world.tight.id), 2)]
    assert datetime.fromisoformat(entries[0]["joined_at"])
    envelope(await drop(api, second, world.tight), 200)  # leaves the line ahead of third
    entries = envelope(await api.client.get(path, headers=as_student(api, third)), 200)["data"]
    assert [e["position"] for e in entries] == [1]
    envelope(await drop(api, first, world.tight), 200)  # third takes the seat
    entries = envelope(await api.client.get(path, headers=as_student(api, third)), 200)["data"]
    assert entries == []


async def test_available_sections_lists_only_sections_with_seats_left_and_live_counts(
    api: Api, world: World
) -> None:
    student = world.students[0]
    envelope(await register(api, student, [world.tight, world.roomy]), 200)
    response = await api.client.get(
        f"/api/v1/sections/available?semester_id={world.semester.id}",
        headers=as_student(api, student),
    )
    sections = envelope(response, 200)["data"]["sections"]
    assert [s["section_id"] for s in sections] == [str(world.roomy.id)]
    (roomy,) = sections
    assert roomy["available_seats"] == 2 and roomy["total_seats"] == 3
    assert roomy["semester_id"] == str(world.semester.id)
    assert roomy["section_number"] == world.roomy.section_number
    assert roomy["course_code"] and roomy["waitlist_length"] == 0
    other = await api.client.get(
        f"/api/v1/sections/available?semester_id={uuid.uuid4()}", headers=as_staff(api)
    )
    assert envelope(other, 200)["data"] == {"sections": []}


async def test_available_sections_lists_every_open_section_of_a_large_semester(
    api: Api, catalog: Catalog
) -> None:
    """More sections than one page of the catalog (500): none may go missing."""
    semester, course = await catalog.semester(), await catalog.course()
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        rows = await connection.fetch(
            """INSERT INTO sections (course_id, semester_id, section_number, total_seats)
               SELECT $1, $2, lpad(g::text, 4, '0'), 1 FROM generate_series(1, 501) g
               RETURNING section_id""",
            course.id,
            semester.id,
        )
    finally:
        await connection.close()
    ids = [r["section_id"] for r in rows]
    await asyncio.gather(
        *(
            api.container.seats.open_section(
                SectionSetup(i, 1, True, semester.registration_start, semester.registration_end)
            )
            for i in ids
        )
    )
    response = await api.client.get(
        f"/api/v1/sections/available?semester_id={semester.id}", headers=as_staff(api)
    )
    listed = envelope(response, 200)["data"]["sections"]
    assert sorted(s["section_id"] for s in listed) == sorted(str(i) for i in ids)


def _body(w: World, **changes: Any) -> dict[str, Any]:
    return {"student_id": str(w.students[0].id), "section_ids": [str(w.roomy.id)], **changes}


BAD_REQUESTS = [
    pytest.param(lambda w: b"{not json", id="malformed-json"),
    pytest.param(lambda w: b"", id="empty-body"),
    pytest.param(lambda w: b"[1, 2]", id="json-array"),
    pytest.param(lambda w: b"\xff\xfe\x00", id="not-utf8"),
    pytest.param(lambda w: {"section_ids": [str(w.roomy.id)]}, id="student-id-missing"),
    pytest.param(lambda w: _body(w, student_id="12345"), id="student-id-malformed"),
    pytest.param(lambda w: _body(w, student_id=12345), id="student-id-a-number"),
    pytest.param(lambda w: _body(w, section_ids=str(w.roomy.id)), id="section-ids-not-a-list"),
    pytest.param(lambda w: _body(w, section_ids=["nope"]), id="section-id-malformed"),
    pytest.param(lambda w: _body(w, section_ids=[None]), id="section-id-null"),
    pytest.param(lambda w: _body(w, section_ids=[]), id="no-sections"),
    pytest.param(
        lambda w: _body(w, section_ids=[str(uuid.uuid4()) for _ in range(11)]),
        id="eleven-sections",
    ),
    pytest.param(lambda w: _body(w, section_ids=[str(w.roomy.id)] * 2), id="duplicate-sections"),
    pytest.param(lambda w: _body(w, idempotency_key=7), id="idempotency-key-a-number"),
    pytest.param(lambda w: _body(w, idempotency_key="k" * 129), id="idempotency-key-too-long"),
]


@pytest.mark.parametrize("content", BAD_REQUESTS)
async def test_a_malformed_register_request_is_400_and_changes_nothing(
    api: Api, world: World, content: Any
) -> None:
    before = await footprint(api)
    payload = content(world)
    response = await api.client.post(
        REGISTER,
        content=payload if isinstance(payload, bytes) else None,
        json=None if isinstance(payload, bytes) else payload,
        headers={**as_staff(api), "Content-Type": "application/json"},
    )
    assert envelope(response, 400)["errors"][0]["code"] == "BAD_USER_INPUT"
    assert await footprint(api) == before


async def test_a_body_over_the_configured_limit_is_413_and_one_under_it_is_processed(
    api: Api, world: World, settings: Settings
) -> None:
    """REST has the app's one body limit, COURSEREG_MAX_BODY_BYTES: with the default (1 MiB)
    a 70 KB body is read; with 4096 a 5000-byte one is refused before it is read."""

    async def padded(app: Api, section: Any, size: int) -> httpx.Response:
        body = _body(world, section_ids=[str(section.id)], pad="x" * size)
        return await app.client.post(REGISTER, json=body, headers=as_staff(app))

    (result,) = envelope(await padded(api, world.roomy, 70_000), 200)["data"]["results"]
    assert result["status"] == "enrolled"
    async with running_app(settings.model_copy(update={"max_body_bytes": 4096})) as limited:
        before = await footprint(limited)
        refusal = envelope(await padded(limited, world.tight, 5000), 413)
        assert refusal["message"] == "request body over 4096 bytes"
        assert refusal["errors"][0]["code"] == "BAD_USER_INPUT"
        assert await footprint(limited) == before
        (result,) = envelope(await padded(limited, world.tight, 3000), 200)["data"]["results"]
        assert result["status"] == "enrolled"


async def test_a_malformed_drop_request_is_400(api: Api, world: World) -> None:
    student = str(world.students[0].id)
    for payload in (
        {"student_id": student},
        {"student_id": student, "section_id": "x"},
        {"student_id": "x", "section_id": str(world.roomy.id)},
    ):
        response = await api.client.post(DROP, json=payload, headers=as_staff(api))
        assert envelope(response, 400)["errors"][0]["code"] == "BAD_USER_INPUT", payload
    response = await api.client.post(DROP, content=b"{", headers=as_staff(api))
    envelope(response, 400)


@pytest.mark.parametrize(
    "query", ["", "?semester_id=", "?semester_id=abc", "?semester_id=1234&x=1", "?other=1"]
)
async def test_available_sections_without_a_valid_semester_id_is_400(
    api: Api, world: World, query: str
) -> None:
    response = await api.client.get(f"/api/v1/sections/available{query}", headers=as_staff(api))
    assert envelope(response, 400)["errors"][0]["code"] == "BAD_USER_INPUT"


async def test_an_unknown_student_is_404_on_every_student_endpoint(api: Api, world: World) -> None:
    stranger = uuid.uuid4()
    before = await footprint(api)
    calls = [
        ("POST", REGISTER, {"student_id": str(stranger), "section_ids": [str(world.roomy.id)]}),
        ("POST", DROP, {"student_id": str(stranger), "section_id": str(world.roomy.id)}),
        ("GET", f"/api/v1/students/{stranger}/registrations", None),
        ("GET", f"/api/v1/students/{stranger}/waitlist", None),
    ]
    for method, path, body in calls:
        for headers in (as_staff(api), {"Authorization": f"Bearer {api.student_token(stranger)}"}):
            response = await api.client.request(method, path, json=body, headers=headers)
            assert envelope(response, 404)["errors"][0]["code"] == "NOT_FOUND", path
    assert await footprint(api) == before


async def test_a_malformed_student_id_in_the_path_is_400(api: Api, world: World) -> None:
    for path in ("/api/v1/students/not-a-uuid/registrations", "/api/v1/students/123/waitlist"):
        response = await api.client.get(path, headers=as_staff(api))
        assert envelope(response, 400)["errors"][0]["code"] == "BAD_USER_INPUT", path


async def test_an_inactive_student_registering_is_refused_and_nothing_changes(
    api: Api, world: World
) -> None:
    student = world.students[0]
    await api.container.catalog.set_student_status(
        api.container.tokens.verify(api.token()), student.id, "inactive"
    )
    before = await footprint(api)
    body = envelope(await register(api, student, [world.roomy]), 403)
    assert body["errors"][0]["code"] == "STUDENT_NOT_ELIGIBLE"
    assert await footprint(api) == before


async def test_a_wrong_method_is_405_not_500(api: Api, world: World) -> None:
    assert (await api.client.get(REGISTER, headers=as_staff(api))).status_code == 405
    assert (await api.client.delete(DROP, headers=as_staff(api))).status_code == 405
