"""Staff work: creating the catalog (round trips), capacity changes (raising promotes the
waitlist at once in join order; lowering below the enrolled count is refused and changes
nothing), student status (inactive students cannot register, at once), and re-registering
after a drop. After draining, Postgres holds what Redis answered."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import asyncpg

from tests.client import CAPACITY, DROP, REGISTER, SET_STATUS, outcome, register
from tests.conftest import Api, Catalog, Worker
from tests.footprint import error_code, footprint
from tests.invariants import check_postgres, check_redis

CREATE_SEMESTER = """mutation($i: CreateSemesterInput!) { createSemester(input: $i) {
  id name startDate endDate registrationStart registrationEnd isActive } }"""
CREATE_COURSE = """mutation($i: CreateCourseInput!) { createCourse(input: $i) {
  id code name isActive sections { id } } }"""
CREATE_SECTION = """mutation($i: CreateSectionInput!) { createSection(input: $i) {
  id sectionNumber totalSeats availableSeats waitlistLength isActive
  course { id code } semester { id name } } }"""
CREATE_STUDENT = """mutation($i: CreateStudentInput!) { createStudent(input: $i) {
  id studentNumber firstName lastName email enrollmentStatus registrations { id } waitlist {
  position } } }"""
COURSE_SECTIONS = """query($id: UUID!, $sem: UUID) { section(id: $id) { course {
  sections { id } inSemester: sections(semesterId: $sem) { id } } } }"""


async def fetch(database_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


async def test_create_semester_course_section_and_student_round_trip(api: Api) -> None:
    semester = (
        await api.staff(
            CREATE_SEMESTER,
            i={
                "name": "  Fall 2026 ",
                "startDate": "2026-09-01",
                "endDate": "2026-12-20",
                "registrationStart": "2026-01-01T08:00:00+02:00",
                "registrationEnd": "2099-01-01T00:00:00Z",
            },
        )
    )["createSemester"]
    assert semester["name"] == "Fall 2026" and semester["isActive"] is True
    assert (semester["startDate"], semester["endDate"]) == ("2026-09-01", "2026-12-20")
    assert datetime.fromisoformat(semester["registrationStart"]) == datetime.fromisoformat(
        "2026-01-01T06:00:00+00:00"
    )

    course = (await api.staff(CREATE_COURSE, i={"code": " cs101 ", "name": "Programs"}))[
        "createCourse"
    ]
    assert (course["code"], course["name"], course["isActive"], course["sections"]) == (
        "CS101",
        "Programs",
        True,
        [],
    )

    section = (
        await api.staff(
            CREATE_SECTION,
            i={
                "courseId": course["id"],
                "semesterId": semester["id"],
                "sectionNumber": "A1",
                "totalSeats": 30,
            },
        )
    )["createSection"]
    assert section == {
        "id": section["id"],
        "sectionNumber": "A1",
        "totalSeats": 30,
        "availableSeats": 30,
        "waitlistLength": 0,
        "isActive": True,
        "course": {"id": course["id"], "code": "CS101"},
        "semester": {"id": semester["id"], "name": "Fall 2026"},
    }
    sections = (await api.staff(COURSE_SECTIONS, id=section["id"], sem=semester["id"]))["section"]
    assert sections["course"] == {
        "sections": [{"id": section["id"]}],
        "inSemester": [{"id": section["id"]}],
    }

    student = (
        await api.staff(
            CREATE_STUDENT,
            i={
                "studentNumber": "S-0001",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "email": "ada@uni.edu",
            },
        )
    )["createStudent"]
    assert {k: v for k, v in student.items() if k != "id"} == {
        "studentNumber": "S-0001",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@uni.edu",
        "enrollmentStatus": "active",
        "registrations": [],
        "waitlist": [],
    }

    # The new student and section work on the hot path at once, with no worker or reload.
    body = await api.gql(
        REGISTER,
        api.student_token(student["id"]),
        i={"studentId": student["id"], "sectionIds": [section["id"]]},
    )
    assert body["data"]["register"]["results"] == [
        {
            "sectionId": section["id"],
            "outcome": "ENROLLED",
            "waitlistPosition": None,
            "availableSeats": 29,
            "reason": None,
        }
    ]

    rows = await fetch(
        api.container.settings.postgres,
        "SELECT semester_name, start_date, end_date FROM semesters WHERE semester_id = $1",
        uuid.UUID(semester["id"]),
    )
    assert [tuple(r) for r in rows] == [("Fall 2026", date(2026, 9, 1), date(2026, 12, 20))]


async def test_raising_capacity_promotes_the_waitlist_at_once_in_join_order(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    section = await catalog.section(seats=2)
    students = await catalog.students(6)
    outcomes = [await outcome(api, s, section) for s in students]
    assert outcomes == ["ENROLLED"] * 2 + ["WAITLISTED"] * 4
    line = students[2:]

    data = await api.staff(CAPACITY, s=str(section.id), n=5)
    assert data["setSectionCapacity"] == {
        "id": str(section.id),
        "totalSeats": 5,
        "availableSeats": 0,
        "waitlistLength": 1,
    }
    # Right after the mutation, before any worker: the first three in line hold seats.
    for student in line[:3]:
        standing = await api.container.seats.standing(student.id, section.id)
        assert standing is not None and standing.status.value == "ENROLLED", student.id
    last = await api.container.seats.standing(line[3].id, section.id)
    assert last is not None and (last.status.value, last.position) == ("WAITING", 1)
    await check_redis(api.container, [section.id])

    await worker.drain()
    database_url = api.container.settings.postgres
    (total,) = await fetch(
        database_url, "SELECT total_seats FROM sections WHERE section_id = $1", section.id
    )
    assert total["total_seats"] == 5
    enrolled = await fetch(
        database_url,
        "SELECT student_id FROM registrations WHERE section_id = $1 AND status = 'enrolled'",
        section.id,
    )
    assert {r["student_id"] for r in enrolled} == {s.id for s in students[:5]}
    waiting = await fetch(
        database_url, "SELECT student_id FROM waitlist WHERE section_id = $1", section.id
    )
    assert [r["student_id"] for r in waiting] == [line[3].id]
    await check_postgres(api.container, database_url, [section.id])


async def test_raising_capacity_beyond_the_waitlist_leaves_the_extra_seats_free(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    section = await catalog.section(seats=1)
    first, second = await catalog.students(2)
    assert [await outcome(api, s, section) for s in (first, second)] == ["ENROLLED", "WAITLISTED"]
    data = await api.staff(CAPACITY, s=str(section.id), n=4)
    assert data["setSectionCapacity"]["availableSeats"] == 2
    assert data["setSectionCapacity"]["waitlistLength"] == 0
    await worker.drain()
    await check_postgres(api.container, api.container.settings.postgres, [section.id])


async def test_lowering_capacity_below_the_enrolled_count_is_refused_and_changes_nothing(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=5)
    students = await catalog.students(3)
    for student in students:
        await outcome(api, student, section)
    before = await footprint(api)
    body = await api.gql(CAPACITY, api.token(), s=str(section.id), n=2)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"].get("enrolled") == 3
    assert await footprint(api) == before


async def test_lowering_capacity_to_the_enrolled_count_or_above_works(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    section = await catalog.section(seats=6)
    first, second, late = await catalog.students(3)
    await outcome(api, first, section)
    await outcome(api, second, section)
    data = await api.staff(CAPACITY, s=str(section.id), n=4)
    assert data["setSectionCapacity"]["totalSeats"] == 4
    assert data["setSectionCapacity"]["availableSeats"] == 2
    data = await api.staff(CAPACITY, s=str(section.id), n=2)
    assert data["setSectionCapacity"]["availableSeats"] == 0
    body = await register(api, late, section)
    assert body["data"]["register"]["results"][0] == {
        "sectionId": str(section.id),
        "outcome": "WAITLISTED",
        "waitlistPosition": 1,
        "availableSeats": 0,
        "reason": None,
    }
    await worker.drain()
    (row,) = await fetch(
        api.container.settings.postgres,
        "SELECT total_seats FROM sections WHERE section_id = $1",
        section.id,
    )
    assert row["total_seats"] == 2
    await check_postgres(api.container, api.container.settings.postgres, [section.id])


async def test_an_inactive_student_cannot_register_until_made_active_again(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(seats=3)
    (student,) = await catalog.students(1)
    for status in ("inactive", "suspended", "graduated", "withdrawn"):
        data = await api.staff(SET_STATUS, s=str(student.id), e=status)
        assert data["setStudentStatus"] == {"id": str(student.id), "enrollmentStatus": status}
        before = await footprint(api)
        body = await register(api, student, section)
        assert error_code(body) == "STUDENT_NOT_ELIGIBLE", status
        assert await footprint(api) == before
    await api.staff(SET_STATUS, s=str(student.id), e="active")
    assert await outcome(api, student, section) == "ENROLLED"
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and state.available_seats == 2


async def test_setting_a_status_shows_in_the_students_record(api: Api, catalog: Catalog) -> None:
    (student,) = await catalog.students(1)
    await api.staff(SET_STATUS, s=str(student.id), e="suspended")
    data = await api.staff(
        "query($id: UUID!) { student(id: $id) { enrollmentStatus } }", id=str(student.id)
    )
    assert data == {"student": {"enrollmentStatus": "suspended"}}


async def test_registering_again_after_a_drop_enrolls_again_and_postgres_agrees(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    section = await catalog.section(seats=2)
    (student,) = await catalog.students(1)
    token = api.student_token(student.id)
    drop = {"studentId": str(student.id), "sectionId": str(section.id)}
    assert await outcome(api, student, section) == "ENROLLED"
    await worker.drain()
    body = await api.gql(DROP, token, i=drop)
    assert body["data"]["drop"] == {**drop, "outcome": "DROPPED", "availableSeats": 2}
    await worker.drain()
    (row,) = await fetch(
        api.container.settings.postgres,
        "SELECT status, dropped_date FROM registrations WHERE student_id = $1",
        student.id,
    )
    assert row["status"] == "dropped" and row["dropped_date"] is not None

    assert await outcome(api, student, section) == "ENROLLED"
    await worker.drain()
    rows = await fetch(
        api.container.settings.postgres,
        "SELECT status, dropped_date FROM registrations WHERE student_id = $1",
        student.id,
    )
    assert [(r["status"], r["dropped_date"]) for r in rows] == [("enrolled", None)]
    # A drop and a return in quick succession end the same way.
    await api.gql(DROP, token, i=drop)
    assert await outcome(api, student, section) == "ENROLLED"
    await worker.drain()
    rows = await fetch(
        api.container.settings.postgres,
        "SELECT status, dropped_date FROM registrations WHERE student_id = $1",
        student.id,
    )
    assert [(r["status"], r["dropped_date"]) for r in rows] == [("enrolled", None)]
    await check_postgres(api.container, api.container.settings.postgres, [section.id])
