"""Reads: section, sections (filters, cursor pagination), student with registrations and
waitlist entries, me. Seat counts and waitlist ranks are live from Redis, without waiting
for the worker; catalog rows come from Postgres through batched DataLoaders (no N+1)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.client import CAPACITY, DROP, REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.footprint import assert_no_internals, error_code

SECTION = """query($id: UUID!) { section(id: $id) {
  id sectionNumber totalSeats availableSeats waitlistLength isActive
  course { id code name isActive } semester { id name isActive } } }"""
SECTIONS = """query($f: SectionFilter, $first: Int, $after: String) {
  sections(filter: $f, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node { id sectionNumber availableSeats course { code } } } } }"""
STUDENT = """query($id: UUID!, $status: RegistrationStatus) { student(id: $id) {
  id studentNumber firstName lastName email enrollmentStatus
  registrations(status: $status) { id status registeredAt droppedAt section { id } }
  waitlist { position joinedAt section { id waitlistLength } } } }"""
ME = """{ me { id registrations { status section { id } } waitlist { position } } }"""


async def enroll(api: Api, student: Any, *sections: Any) -> list[dict[str, Any]]:
    body = await api.gql(
        REGISTER,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionIds": [str(s.id) for s in sections]},
    )
    assert "errors" not in body, body
    return list(body["data"]["register"]["results"])


async def leave(api: Api, student: Any, section: Any) -> str:
    body = await api.gql(
        DROP,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionId": str(section.id)},
    )
    return str(body["data"]["drop"]["outcome"])


async def test_section_shows_its_catalog_data_and_live_counts(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=2)
    students = await catalog.students(4)
    for student in students:
        await enroll(api, student, section)
    data = await api.staff(SECTION, id=str(section.id))
    (course,) = await api.container.records.courses([section.course_id])
    (semester,) = await api.container.records.semesters([section.semester_id])
    assert course is not None and semester is not None
    assert data["section"] == {
        "id": str(section.id),
        "sectionNumber": section.section_number,
        "totalSeats": 2,
        "availableSeats": 0,
        "waitlistLength": 2,
        "isActive": True,
        "course": {
            "id": str(section.course_id),
            "code": course.code,
            "name": course.name,
            "isActive": True,
        },
        "semester": {"id": str(section.semester_id), "name": semester.name, "isActive": True},
    }


async def test_live_counts_follow_redis_before_the_worker_persists_anything(
    api: Api, catalog: Catalog
) -> None:
    """No worker runs here: Postgres still says 1 seat, Redis says 3 after the raise."""
    section = await catalog.section(seats=1)
    first, second, third = await catalog.students(3)
    await enroll(api, first, section)
    await enroll(api, second, section)
    await enroll(api, third, section)
    await api.staff(CAPACITY, s=str(section.id), n=3)
    data = await api.staff(SECTION, id=str(section.id))
    assert (data["section"]["totalSeats"], data["section"]["availableSeats"]) == (3, 0)
    assert data["section"]["waitlistLength"] == 0
    (recorded,) = await api.container.records.sections([section.id])
    assert recorded is not None and recorded.total_seats == 1
    await leave(api, first, section)
    data = await api.staff(SECTION, id=str(section.id))
    assert (data["section"]["totalSeats"], data["section"]["availableSeats"]) == (3, 1)


async def test_section_unknown_is_null_and_malformed_is_bad_user_input(
    api: Api, catalog: Catalog
) -> None:
    assert await api.staff(SECTION, id=str(uuid.uuid4())) == {"section": None}
    body = await api.gql(SECTION, api.token(), id="not-a-uuid")
    assert error_code(body) == "BAD_USER_INPUT"


async def test_sections_filter_by_semester_course_code_and_available_only(
    api: Api, catalog: Catalog
) -> None:
    fall, spring = await catalog.semester(), await catalog.semester()
    algebra, poetry = await catalog.course(), await catalog.course()
    full = await catalog.section(1, fall, algebra)
    open_algebra = await catalog.section(5, fall, algebra)
    open_poetry = await catalog.section(5, fall, poetry)
    other_term = await catalog.section(5, spring, algebra)
    (student,) = await catalog.students(1)
    await enroll(api, student, full)

    async def ids(**filter: Any) -> tuple[set[str], int]:
        data = (await api.staff(SECTIONS, f=filter))["sections"]
        return {e["node"]["id"] for e in data["edges"]}, data["totalCount"]

    assert await ids(semesterId=str(fall.id)) == (
        {str(full.id), str(open_algebra.id), str(open_poetry.id)},
        3,
    )
    assert await ids(semesterId=str(fall.id), courseCode=algebra.code) == (
        {str(full.id), str(open_algebra.id)},
        2,
    )
    assert await ids(courseCode=f" {algebra.code.lower()} ") == (
        {str(full.id), str(open_algebra.id), str(other_term.id)},
        3,
    )
    assert await ids(semesterId=str(fall.id), availableOnly=True) == (
        {str(open_algebra.id), str(open_poetry.id)},
        2,
    )
    assert await ids(courseCode="NO-SUCH") == (set(), 0)
    assert await ids(semesterId=str(uuid.uuid4())) == (set(), 0)


async def test_sections_pages_through_every_section_once_in_order(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    courses = [await catalog.course() for _ in range(3)]
    made = [await catalog.section(3, semester, courses[i % 3]) for i in range(8)]
    seen: list[str] = []
    after: str | None = None
    pages = []
    while True:
        data = (
            await api.staff(SECTIONS, f={"semesterId": str(semester.id)}, first=3, after=after)
        )["sections"]
        assert data["totalCount"] == 8
        pages.append(len(data["edges"]))
        seen += [e["node"]["id"] for e in data["edges"]]
        if data["edges"]:
            assert data["pageInfo"]["endCursor"] == data["edges"][-1]["cursor"]
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    assert pages == [3, 3, 2]
    assert sorted(seen) == sorted(str(s.id) for s in made)
    codes = [
        e["node"]["course"]["code"]
        for e in (await api.staff(SECTIONS, f={"semesterId": str(semester.id)}, first=50))[
            "sections"
        ]["edges"]
    ]
    assert codes == sorted(codes)


async def test_sections_first_zero_and_the_default_page(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    for _ in range(3):
        await catalog.section(2, semester)
    data = (await api.staff(SECTIONS, f={"semesterId": str(semester.id)}, first=0))["sections"]
    assert data["edges"] == [] and data["totalCount"] == 3
    assert data["pageInfo"]["hasNextPage"] is True
    body = await api.gql(
        "query($f: SectionFilter) { sections(filter: $f) { edges { cursor } } }",
        api.token(),
        f={"semesterId": str(semester.id)},
    )
    assert len(body["data"]["sections"]["edges"]) == 3


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


BAD_PAGES = [
    pytest.param({"after": "garbage!"}, id="not-base64"),
    pytest.param({"after": "bm90IGpzb24="}, id="base64-not-json"),
    pytest.param({"after": _cursor({"a": 1})}, id="json-object"),
    pytest.param({"after": _cursor(["A", "1"])}, id="two-parts"),
    pytest.param({"after": _cursor(["A", "1", "not-a-uuid"])}, id="id-not-a-uuid"),
    pytest.param({"after": _cursor(5)}, id="json-number"),
    pytest.param({"after": _cursor(["A\x00", "1", str(uuid.uuid4())])}, id="nul-in-code"),
    pytest.param({"after": "€"}, id="non-ascii"),
    pytest.param({"after": "x" * 100_000}, id="huge"),
    pytest.param({"first": -1}, id="first-negative"),
    pytest.param({"first": 501}, id="first-over-the-limit"),
    pytest.param({"first": "ten"}, id="first-a-string"),
    pytest.param({"f": {"courseCode": "CS\x00"}}, id="nul-in-course-code-filter"),
    pytest.param({"f": {"semesterId": "fall"}}, id="semester-id-malformed"),
]


@pytest.mark.parametrize("variables", BAD_PAGES)
async def test_a_bad_cursor_or_page_size_is_bad_user_input(
    api: Api, catalog: Catalog, variables: dict[str, Any]
) -> None:
    await catalog.section(2)
    response = await api.client.post(
        "/graphql",
        json={"query": SECTIONS, "variables": variables},
        headers={"Authorization": f"Bearer {api.token()}"},
    )
    assert response.status_code < 500
    assert_no_internals(response.text[:5000])
    assert error_code(response.json()) == "BAD_USER_INPUT"


async def test_student_registrations_filter_by_status_after_draining(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    kept, dropped = await catalog.section(3), await catalog.section(3)
    (student,) = await catalog.students(1)
    await enroll(api, student, kept, dropped)
    assert await leave(api, student, dropped) == "DROPPED"
    await worker.drain()
    token = api.student_token(student.id)

    async def registrations(status: str | None) -> dict[str, tuple[str, bool]]:
        body = await api.gql(STUDENT, token, id=str(student.id), status=status)
        rows = body["data"]["student"]["registrations"]
        return {r["section"]["id"]: (r["status"], r["droppedAt"] is not None) for r in rows}

    assert await registrations("ENROLLED") == {str(kept.id): ("ENROLLED", False)}
    assert await registrations("DROPPED") == {str(dropped.id): ("DROPPED", True)}
    assert await registrations(None) == {
        str(kept.id): ("ENROLLED", False),
        str(dropped.id): ("DROPPED", True),
    }
    body = await api.gql(STUDENT, token, id=str(student.id), status="WITHDRAWN")
    assert error_code(body) == "BAD_USER_INPUT"


async def test_student_fields_and_unknown_student(api: Api, catalog: Catalog) -> None:
    (student,) = await catalog.students(1)
    data = await api.staff(STUDENT, id=str(student.id))
    assert data["student"] == {
        "id": str(student.id),
        "studentNumber": student.student_number,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": student.email,
        "enrollmentStatus": "active",
        "registrations": [],
        "waitlist": [],
    }
    assert await api.staff(STUDENT, id=str(uuid.uuid4())) == {"student": None}


async def test_waitlist_ranks_are_live_and_move_up_when_someone_ahead_leaves(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    section = await catalog.section(seats=1)
    holder, first, second, third = await catalog.students(4)
    for student in (holder, first, second, third):
        await enroll(api, student, section)
    await worker.drain()  # the waitlist rows reach Postgres; ranks still come from Redis

    async def waitlist(student: Any) -> list[tuple[str, int, int]]:
        body = await api.gql(STUDENT, api.student_token(student.id), id=str(student.id))
        return [
            (w["section"]["id"], w["position"], w["section"]["waitlistLength"])
            for w in body["data"]["student"]["waitlist"]
        ]

    assert await waitlist(third) == [(str(section.id), 3, 3)]
    assert await leave(api, first, section) == "LEFT_WAITLIST"
    assert await waitlist(third) == [(str(section.id), 2, 2)]  # no drain in between
    assert await leave(api, holder, section) == "DROPPED"  # second takes the seat
    assert await waitlist(third) == [(str(section.id), 1, 1)]
    assert await waitlist(second) == []  # promoted: no longer waiting, whatever Postgres says
    assert await waitlist(first) == []
    await worker.drain()
    body = await api.gql(ME, api.student_token(second.id))
    assert body["data"]["me"] == {
        "id": str(second.id),
        "registrations": [{"status": "ENROLLED", "section": {"id": str(section.id)}}],
        "waitlist": [],
    }


@contextmanager
def counted_statements(api: Api) -> Iterator[list[str]]:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = api.container.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


NESTED = """query($first: Int) { sections(first: $first) {
  edges { node { course { code } semester { name } availableSeats waitlistLength } } } }"""


async def test_sections_load_courses_and_semesters_in_batches_not_one_query_per_section(
    api: Api, catalog: Catalog
) -> None:
    semesters = [await catalog.semester() for _ in range(5)]
    courses = await asyncio.gather(*(catalog.course() for _ in range(50)))
    await asyncio.gather(
        *(catalog.section(2, semesters[i % 5], course) for i, course in enumerate(courses))
    )
    counts = {}
    for first in (5, 50):
        with counted_statements(api) as statements:
            data = await api.staff(NESTED, first=first)
        edges = data["sections"]["edges"]
        assert len(edges) == first
        assert all(e["node"]["course"]["code"] and e["node"]["semester"]["name"] for e in edges)
        counts[first] = len(statements)
    print(f"\nSQL statements: 5 sections -> {counts[5]}, 50 sections -> {counts[50]}")
    assert counts[50] == counts[5] <= 4, counts


async def test_students_registrations_and_their_sections_load_in_batches(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    sections = await asyncio.gather(*(catalog.section(5) for _ in range(10)))
    (student,) = await catalog.students(1)
    await enroll(api, student, *sections)
    await worker.drain()
    query = """query($id: UUID!) { student(id: $id) { registrations {
      section { course { code } semester { name } availableSeats } } waitlist { position } } }"""
    with counted_statements(api) as statements:
        data = await api.staff(query, id=str(student.id))
    assert len(data["student"]["registrations"]) == 10
    assert len(statements) <= 6, statements
