"""Bad input to register, drop and the staff mutations: every case answers below 500 with the
contract's error code (or a REJECTED outcome with its reason), shows no internals, and leaves
Redis (seats, enrolled sets, waitlists, streams) and Postgres exactly as they were."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.client import CAPACITY, DROP, REGISTER, SET_STATUS
from tests.conftest import Api, Catalog
from tests.footprint import assert_no_internals, error_code, footprint

CREATE_SEMESTER = """mutation($i: CreateSemesterInput!) { createSemester(input: $i) { id } }"""
CREATE_COURSE = """mutation($i: CreateCourseInput!) { createCourse(input: $i) { id code } }"""
CREATE_SECTION = """mutation($i: CreateSectionInput!) { createSection(input: $i) { id } }"""
CREATE_STUDENT = """mutation($i: CreateStudentInput!) { createStudent(input: $i) { id } }"""

MEGABYTE = "k" * 1_000_000
UNKNOWN = "5a1d6c1e-0000-4000-8000-000000000000"


@dataclass
class World:
    """`full` (2 seats) holds two enrolled students and one waiting; `roomy` has 5 free seats;
    `closed` and `early` are in semesters whose registration window is past or ahead."""

    full: Any
    roomy: Any
    closed: Any
    early: Any
    semester: Any
    course: Any
    enrolled: list[Any]
    waiting: Any
    me: Any
    inactive: Any


@pytest.fixture
async def world(api: Api, catalog: Catalog) -> World:
    now = datetime.now(UTC)
    semester = await catalog.semester()
    course = await catalog.course()
    full = await catalog.section(seats=2, semester=semester, course=course)
    roomy = await catalog.section(seats=5, semester=semester)
    past = await catalog.semester(now - timedelta(days=10), now - timedelta(days=1))
    ahead = await catalog.semester(now + timedelta(days=1), now + timedelta(days=10))
    closed = await catalog.section(seats=5, semester=past)
    early = await catalog.section(seats=5, semester=ahead)
    first, second, waiting, me, inactive = await catalog.students(5)
    for student in (first, second, waiting):
        await api.container.registrar.register(
            _staff(api), student.id, [full.id], request_id="setup"
        )
    await api.staff(SET_STATUS, s=str(inactive.id), e="inactive")
    return World(
        full, roomy, closed, early, semester, course, [first, second], waiting, me, inactive
    )


def _staff(api: Api) -> Any:
    return api.container.tokens.verify(api.token())


Variables = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    query: str
    variables: Variables
    code: str  # the error's extensions.code, or REJECTED
    reasons: tuple[str, ...] = ()  # per section, when REJECTED
    as_student: bool = False  # with the token of w.me instead of staff


def reg(student: Callable[[World], Any], sections: Callable[[World], Any], **more: Any):
    def build(w: World) -> dict[str, Any]:
        return {
            "i": {
                "studentId": student(w),
                "sectionIds": sections(w),
                **more,
            }
        }

    return build


def me(w: World) -> str:
    return str(w.me.id)


def roomy(w: World) -> list[str]:
    return [str(w.roomy.id)]


def semester_input(**changes: Any) -> Variables:
    base = {
        "name": "Spring",
        "startDate": "2027-01-10",
        "endDate": "2027-05-10",
        "registrationStart": "2026-11-01T00:00:00Z",
        "registrationEnd": "2026-12-01T00:00:00Z",
    }
    return lambda w: {"i": {**base, **changes}}


def section_input(**changes: Any) -> Variables:
    def build(w: World) -> dict[str, Any]:
        base = {
            "courseId": str(w.course.id),
            "semesterId": str(w.semester.id),
            "sectionNumber": "N1",
            "totalSeats": 10,
        }
        return {"i": {**base, **changes}}

    return build


def student_input(**changes: Any) -> Variables:
    def build(w: World) -> dict[str, Any]:
        base = {
            "studentNumber": "S-NEW-1",
            "firstName": "Grace",
            "lastName": "Hopper",
            "email": "grace@uni.edu",
        }
        values = {k: v(w) if callable(v) else v for k, v in {**base, **changes}.items()}
        return {"i": values}

    return build


BAD = "BAD_USER_INPUT"
NOT_FOUND = "NOT_FOUND"

REGISTER_CASES = [
    pytest.param(Case(REGISTER, reg(lambda w: "not-a-uuid", roomy), BAD), id="student-malformed"),
    pytest.param(Case(REGISTER, reg(me, lambda w: ["123"]), BAD), id="section-malformed"),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(w.roomy.id)[:-1] + "g"]), BAD), id="section-hex-typo"
    ),
    pytest.param(Case(REGISTER, reg(me, lambda w: []), BAD), id="zero-sections"),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(uuid.uuid4()) for _ in range(11)]), BAD),
        id="eleven-sections",
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(w.roomy.id)] * 2), BAD), id="duplicate-sections"
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(w.roomy.id), str(w.roomy.id).upper()]), BAD),
        id="duplicate-sections-other-spelling",
    ),
    pytest.param(Case(REGISTER, reg(lambda w: UNKNOWN, roomy), NOT_FOUND), id="unknown-student"),
    pytest.param(
        Case(REGISTER, reg(lambda w: str(w.inactive.id), roomy), "STUDENT_NOT_ELIGIBLE"),
        id="inactive-student",
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: str(w.roomy.id) + "x"), BAD), id="sections-not-a-list"
    ),
    pytest.param(Case(REGISTER, reg(lambda w: 42, roomy), BAD), id="student-id-an-int"),
    pytest.param(Case(REGISTER, reg(me, lambda w: [7]), BAD), id="section-id-an-int"),
    pytest.param(Case(REGISTER, reg(me, lambda w: None), BAD), id="sections-null"),
    pytest.param(
        Case(REGISTER, reg(me, roomy, idempotencyKey=MEGABYTE), BAD), id="megabyte-idempotency-key"
    ),
    pytest.param(
        Case(REGISTER, reg(me, roomy, idempotencyKey=""), BAD), id="empty-idempotency-key"
    ),
    pytest.param(
        Case(REGISTER, reg(me, roomy, idempotencyKey=12), BAD), id="idempotency-key-an-int"
    ),
    pytest.param(Case(REGISTER, reg(me, roomy, extra=True), BAD), id="unknown-input-field"),
    pytest.param(
        Case(REGISTER, lambda w: {"i": {"sectionIds": roomy(w)}}, BAD), id="student-id-missing"
    ),
    pytest.param(Case(REGISTER, lambda w: {}, BAD), id="input-missing"),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [UNKNOWN]), "REJECTED", ("SECTION_NOT_FOUND",)),
        id="unknown-section",
    ),
    pytest.param(
        Case(
            REGISTER,
            reg(me, lambda w: [str(uuid.uuid4()) for _ in range(10)]),
            "REJECTED",
            ("SECTION_NOT_FOUND",) * 10,
        ),
        id="ten-unknown-sections",
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(w.closed.id)]), "REJECTED", ("REGISTRATION_CLOSED",)),
        id="window-closed",
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: [str(w.early.id)]), "REJECTED", ("REGISTRATION_CLOSED",)),
        id="window-not-open-yet",
    ),
    pytest.param(
        Case(
            REGISTER,
            reg(me, lambda w: [str(w.closed.id), UNKNOWN, str(w.early.id)]),
            "REJECTED",
            ("REGISTRATION_CLOSED", "SECTION_NOT_FOUND", "REGISTRATION_CLOSED"),
        ),
        id="every-section-rejected-in-order",
    ),
    pytest.param(
        Case(
            REGISTER,
            reg(me, lambda w: [str(w.closed.id)]),
            "REJECTED",
            ("REGISTRATION_CLOSED",),
            True,
        ),
        id="window-closed-as-student",
    ),
    pytest.param(
        Case(REGISTER, reg(me, lambda w: []), BAD, as_student=True), id="zero-sections-as-student"
    ),
]

DROP_CASES = [
    pytest.param(
        Case(DROP, lambda w: {"i": {"studentId": "nope", "sectionId": str(w.full.id)}}, BAD),
        id="student-malformed",
    ),
    pytest.param(
        Case(DROP, lambda w: {"i": {"studentId": me(w), "sectionId": "12-34"}}, BAD),
        id="section-malformed",
    ),
    pytest.param(
        Case(DROP, lambda w: {"i": {"studentId": UNKNOWN, "sectionId": str(w.full.id)}}, NOT_FOUND),
        id="unknown-student",
    ),
    pytest.param(
        Case(DROP, lambda w: {"i": {"studentId": me(w), "sectionId": UNKNOWN}}, NOT_FOUND),
        id="unknown-section",
    ),
    pytest.param(
        Case(DROP, lambda w: {"i": {"studentId": me(w), "sectionId": [str(w.full.id)]}}, BAD),
        id="section-a-list",
    ),
    pytest.param(Case(DROP, lambda w: {"i": {"studentId": me(w)}}, BAD), id="section-missing"),
    pytest.param(
        Case(
            DROP,
            lambda w: {
                "i": {
                    "studentId": str(w.enrolled[0].id),
                    "sectionId": str(w.full.id),
                    "idempotencyKey": MEGABYTE,
                }
            },
            BAD,
        ),
        id="megabyte-idempotency-key",
    ),
]

CATALOG_CASES = [
    # createSemester
    pytest.param(Case(CREATE_SEMESTER, semester_input(name="   "), BAD), id="semester-blank-name"),
    pytest.param(Case(CREATE_SEMESTER, semester_input(name=MEGABYTE), BAD), id="semester-mb-name"),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(name="Fall\x00"), BAD), id="semester-nul-in-name"
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(endDate="2026-01-01"), BAD), id="semester-ends-first"
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(registrationEnd="2026-10-01T00:00:00Z"), BAD),
        id="semester-window-backwards",
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(registrationStart="2026-11-01T00:00:00"), BAD),
        id="semester-naive-datetime",
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(startDate="2027-13-45"), BAD), id="semester-bad-date"
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(registrationEnd="9999-12-31T23:59:59-12:00"), BAD),
        id="semester-window-ends-after-year-9999-in-utc",
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(registrationStart="0001-01-01T00:00:00+14:00"), BAD),
        id="semester-window-starts-before-year-1-in-utc",
    ),
    pytest.param(
        Case(CREATE_SEMESTER, semester_input(startDate=20270110), BAD), id="semester-date-an-int"
    ),
    # createCourse
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": w.course.code, "name": "Again"}}, BAD),
        id="course-duplicate-code",
    ),
    pytest.param(
        Case(
            CREATE_COURSE, lambda w: {"i": {"code": f" {w.course.code.lower()} ", "name": "x"}}, BAD
        ),
        id="course-duplicate-code-other-case",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "", "name": "Empty"}}, BAD),
        id="course-empty-code",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "C" * 21, "name": "Long"}}, BAD),
        id="course-code-too-long",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "ß" * 15, "name": "Grows"}}, BAD),
        id="course-code-too-long-once-upper-cased",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "OK1", "name": MEGABYTE}}, BAD),
        id="course-mb-name",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "NUL\x00", "name": "x"}}, BAD),
        id="course-nul-in-code",
    ),
    pytest.param(
        Case(CREATE_COURSE, lambda w: {"i": {"code": "OK2", "name": None}}, BAD),
        id="course-null-name",
    ),
    # createSection
    pytest.param(
        Case(CREATE_SECTION, section_input(courseId=UNKNOWN), NOT_FOUND),
        id="section-unknown-course",
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(semesterId=UNKNOWN), NOT_FOUND),
        id="section-unknown-semester",
    ),
    pytest.param(Case(CREATE_SECTION, section_input(courseId="x"), BAD), id="section-bad-course"),
    pytest.param(Case(CREATE_SECTION, section_input(totalSeats=0), BAD), id="section-zero-seats"),
    pytest.param(
        Case(CREATE_SECTION, section_input(totalSeats=-3), BAD), id="section-negative-seats"
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(totalSeats=100_001), BAD), id="section-too-many-seats"
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(totalSeats=2**31), BAD), id="section-seats-over-int32"
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(totalSeats="ten"), BAD), id="section-seats-a-string"
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(totalSeats=2.5), BAD), id="section-seats-a-float"
    ),
    pytest.param(
        Case(
            CREATE_SECTION,
            lambda w: section_input(sectionNumber=w.full.section_number)(w),
            BAD,
        ),
        id="section-duplicate-number",
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(sectionNumber="S" * 11), BAD), id="section-number-long"
    ),
    pytest.param(
        Case(CREATE_SECTION, section_input(sectionNumber=" "), BAD), id="section-number-blank"
    ),
    # createStudent
    pytest.param(
        Case(CREATE_STUDENT, student_input(studentNumber=lambda w: w.me.student_number), BAD),
        id="student-duplicate-number",
    ),
    pytest.param(
        Case(CREATE_STUDENT, student_input(email=lambda w: w.me.email), BAD),
        id="student-duplicate-email",
    ),
    pytest.param(
        Case(CREATE_STUDENT, student_input(email="no-at-sign"), BAD), id="student-email-no-at"
    ),
    pytest.param(
        Case(CREATE_STUDENT, student_input(email=MEGABYTE + "@uni.edu"), BAD),
        id="student-mb-email",
    ),
    pytest.param(Case(CREATE_STUDENT, student_input(firstName=""), BAD), id="student-empty-name"),
    pytest.param(
        Case(CREATE_STUDENT, student_input(lastName="Nul\x00l"), BAD), id="student-nul-in-name"
    ),
    pytest.param(
        Case(CREATE_STUDENT, student_input(studentNumber="9" * 21), BAD), id="student-number-long"
    ),
    # setSectionCapacity
    pytest.param(Case(CAPACITY, lambda w: {"s": str(w.full.id), "n": 0}, BAD), id="capacity-zero"),
    pytest.param(
        Case(CAPACITY, lambda w: {"s": str(w.full.id), "n": -1}, BAD), id="capacity-negative"
    ),
    pytest.param(
        Case(CAPACITY, lambda w: {"s": str(w.full.id), "n": 1}, BAD),
        id="capacity-below-enrolled",
    ),
    pytest.param(
        Case(CAPACITY, lambda w: {"s": str(w.full.id), "n": 100_001}, BAD),
        id="capacity-too-large",
    ),
    pytest.param(
        Case(CAPACITY, lambda w: {"s": str(w.full.id), "n": "3"}, BAD),
        id="capacity-a-string",
    ),
    pytest.param(
        Case(CAPACITY, lambda w: {"s": UNKNOWN, "n": 3}, NOT_FOUND), id="capacity-unknown"
    ),
    pytest.param(Case(CAPACITY, lambda w: {"s": "full", "n": 3}, BAD), id="capacity-malformed-id"),
    # setStudentStatus
    pytest.param(
        Case(SET_STATUS, lambda w: {"s": me(w), "e": "expelled"}, BAD), id="status-invalid"
    ),
    pytest.param(Case(SET_STATUS, lambda w: {"s": me(w), "e": ""}, BAD), id="status-empty"),
    pytest.param(
        Case(SET_STATUS, lambda w: {"s": me(w), "e": "INACTIVE"}, BAD), id="status-wrong-case"
    ),
    pytest.param(Case(SET_STATUS, lambda w: {"s": me(w), "e": MEGABYTE}, BAD), id="status-mb"),
    pytest.param(
        Case(SET_STATUS, lambda w: {"s": UNKNOWN, "e": "inactive"}, NOT_FOUND),
        id="status-unknown-student",
    ),
    pytest.param(Case(SET_STATUS, lambda w: {"s": me(w), "e": None}, BAD), id="status-null"),
]


async def _refused_without_a_trace(api: Api, world: World, case: Case) -> None:
    token = api.student_token(world.me.id) if case.as_student else api.token()
    variables = case.variables(world)
    before = await footprint(api)
    response = await api.client.post(
        "/graphql",
        json={"query": case.query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code < 500, response.text[:2000]
    assert_no_internals(response.text[:100_000])
    body = response.json()
    if case.code == "REJECTED":
        assert "errors" not in body, body
        results = body["data"]["register"]["results"]
        assert [(r["outcome"], r["reason"]) for r in results] == [
            ("REJECTED", reason) for reason in case.reasons
        ]
        assert [r["sectionId"] for r in results] == variables["i"]["sectionIds"]
    else:
        assert error_code(body) == case.code, body
        assert len(response.text) < 10_000, "the error echoes the huge input"
    assert await footprint(api) == before


TABLES = {
    "register": REGISTER_CASES,
    "drop": DROP_CASES,
    **{
        name: [c for c in CATALOG_CASES if c.values[0].query == query]  # type: ignore[union-attr]
        for name, query in (
            ("createSemester", CREATE_SEMESTER),
            ("createCourse", CREATE_COURSE),
            ("createSection", CREATE_SECTION),
            ("createStudent", CREATE_STUDENT),
            ("setSectionCapacity", CAPACITY),
            ("setStudentStatus", SET_STATUS),
        )
    },
}


@pytest.mark.parametrize("table", TABLES)
async def test_bad_input_is_refused_with_its_code_and_changes_nothing(
    api: Api, world: World, table: str
) -> None:
    """Runs every row of the mutation's table against one world; reports all failing rows."""
    failures = []
    for row in TABLES[table]:
        try:
            await _refused_without_a_trace(api, world, row.values[0])  # type: ignore[arg-type]
        except AssertionError as exc:
            failures.append(f"{row.id}: {str(exc)[:600]}")
    assert not failures, "\n".join(failures)


def test_every_row_of_the_tables_is_run() -> None:
    assert sum(len(rows) for rows in TABLES.values()) == len(REGISTER_CASES) + len(
        DROP_CASES
    ) + len(CATALOG_CASES)


MALFORMED_DOCUMENTS = [
    pytest.param("mutation { register(input: {", id="syntax-error"),
    pytest.param("{ nosuchfield }", id="unknown-field"),
    pytest.param(
        'mutation { register(input: {studentId: "x", sectionIds: []}) { studentId } }',
        id="malformed-uuid-literal",
    ),
    pytest.param(
        "mutation { register(input: {studentId: 12, sectionIds: [3]}) { studentId } }",
        id="int-uuid-literal",
    ),
    pytest.param("mutation($i: RegisterInput!) { register(input: $i) }", id="no-selection"),
    pytest.param("{ " + "section(id: $x) { id } " * 2 + "}", id="undeclared-variable"),
]


@pytest.mark.parametrize("query", MALFORMED_DOCUMENTS)
async def test_a_malformed_document_is_bad_user_input_and_changes_nothing(
    api: Api, world: World, query: str
) -> None:
    before = await footprint(api)
    response = await api.client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {api.token()}"},
    )
    assert response.status_code < 500, response.text
    assert_no_internals(response.text)
    assert error_code(response.json()) == BAD
    assert await footprint(api) == before


async def test_an_unparseable_request_body_is_refused_below_500(api: Api, world: World) -> None:
    for content in (b"{not json", b"[]", b'{"query": 5}', b"\xff\xfe"):
        response = await api.client.post(
            "/graphql",
            content=content,
            headers={"Authorization": f"Bearer {api.token()}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, (content, response.status_code, response.text)
        assert_no_internals(response.text)


async def test_an_idempotency_key_reused_with_other_input_is_bad_input_and_changes_nothing(
    api: Api, world: World
) -> None:
    token = api.student_token(world.me.id)
    first = await api.gql(
        REGISTER,
        token,
        i={"studentId": me(world), "sectionIds": roomy(world), "idempotencyKey": "k1"},
    )
    assert first["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    before = await footprint(api)
    other_sections = {
        "studentId": me(world),
        "sectionIds": [str(world.full.id)],
        "idempotencyKey": "k1",
    }
    body = await api.gql(REGISTER, token, i=other_sections)
    assert error_code(body) == BAD
    more_sections = {**other_sections, "sectionIds": [str(world.roomy.id), str(world.full.id)]}
    assert error_code(await api.gql(REGISTER, token, i=more_sections)) == BAD
    as_drop = {"studentId": me(world), "sectionId": str(world.roomy.id), "idempotencyKey": "k1"}
    assert error_code(await api.gql(DROP, token, i=as_drop)) == BAD
    assert await footprint(api) == before
    again = await api.gql(
        REGISTER,
        token,
        i={"studentId": me(world), "sectionIds": roomy(world), "idempotencyKey": "k1"},
    )
    assert again == first
    assert await footprint(api) == before


async def test_an_unknown_section_is_rejected_alone_and_the_others_proceed(
    api: Api, world: World
) -> None:
    body = await api.gql(
        REGISTER,
        api.student_token(world.me.id),
        i={
            "studentId": me(world),
            "sectionIds": [UNKNOWN, str(world.roomy.id), str(world.full.id)],
        },
    )
    assert body["data"]["register"]["results"] == [
        {
            "sectionId": UNKNOWN,
            "outcome": "REJECTED",
            "waitlistPosition": None,
            "availableSeats": None,
            "reason": "SECTION_NOT_FOUND",
        },
        {
            "sectionId": str(world.roomy.id),
            "outcome": "ENROLLED",
            "waitlistPosition": None,
            "availableSeats": 4,
            "reason": None,
        },
        {
            "sectionId": str(world.full.id),
            "outcome": "WAITLISTED",
            "waitlistPosition": 2,
            "availableSeats": 0,
            "reason": None,
        },
    ]
