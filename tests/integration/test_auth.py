"""Who may do what, over GraphQL and REST: a bad token is UNAUTHENTICATED (401), a student
acting for another student or calling a staff-only field is FORBIDDEN (403), staff act for
anyone. Every refused request leaves Redis and Postgres as they were."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests.client import CAPACITY, DROP, REGISTER, SET_STATUS
from tests.conftest import SECRET, Api, Catalog
from tests.footprint import assert_no_internals, error_code, footprint

STUDENT = """query($id: UUID!) { student(id: $id) { id studentNumber } }"""
ME = """{ me { id studentNumber } }"""
CREATE_SEMESTER = """mutation($i: CreateSemesterInput!) { createSemester(input: $i) { id } }"""
CREATE_COURSE = """mutation($i: CreateCourseInput!) { createCourse(input: $i) { id } }"""
CREATE_SECTION = """mutation($i: CreateSectionInput!) { createSection(input: $i) { id } }"""
CREATE_STUDENT = """mutation($i: CreateStudentInput!) { createStudent(input: $i) { id } }"""


def forge(claims: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def claims(sub: str, role: str = "student", lifetime: int = 3600) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "role": role, "iat": now, "exp": now + lifetime}


def without(claim: str, sub: str) -> dict[str, Any]:
    found = claims(sub)
    del found[claim]
    return found


Header = Callable[[str], str | None]  # the Authorization value, given the student's id

BAD_CREDENTIALS = [
    pytest.param(lambda s: None, id="no-token"),
    pytest.param(lambda s: "", id="empty-header"),
    pytest.param(lambda s: "Basic dXNlcjpwYXNz", id="basic-scheme"),
    pytest.param(lambda s: "Bearer", id="bearer-without-token"),
    pytest.param(lambda s: "Bearer not-a-jwt", id="malformed-jwt"),
    pytest.param(lambda s: "Bearer a.b.c", id="garbage-segments"),
    pytest.param(lambda s: forge(claims(s)), id="token-without-bearer-scheme"),
    pytest.param(
        lambda s: "Bearer " + forge(claims(s), secret="another-secret-" + "y" * 40),
        id="bad-signature",
    ),
    pytest.param(lambda s: "Bearer " + forge(claims(s, lifetime=-60)), id="expired"),
    pytest.param(lambda s: "Bearer " + forge(without("exp", s)), id="without-exp"),
    pytest.param(lambda s: "Bearer " + forge(without("role", s)), id="without-role"),
    pytest.param(lambda s: "Bearer " + forge(without("sub", s)), id="without-sub"),
    pytest.param(lambda s: "Bearer " + forge(claims(s, role="admin")), id="unknown-role"),
    pytest.param(lambda s: "Bearer " + forge(claims(s, role="STAFF")), id="role-wrong-case"),
    pytest.param(lambda s: "Bearer " + forge(claims("alice")), id="student-sub-not-a-uuid"),
    pytest.param(
        lambda s: "Bearer " + forge({**claims(s), "exp": "tomorrow"}), id="exp-not-a-number"
    ),
    pytest.param(
        lambda s: "Bearer " + forge(claims(s), secret=SECRET, algorithm="HS384"),
        id="other-algorithm",
    ),
    pytest.param(
        lambda s: "Bearer " + jwt.encode(claims(s, role="staff"), "", algorithm="none"),
        id="unsigned-alg-none",
    ),
]


@dataclass
class World:
    """A section with one seat held by `other`, and `me` registered nowhere."""

    me: Any
    other: Any
    section: Any
    semester: Any
    course: Any


@pytest.fixture
async def world(api: Api, catalog: Catalog) -> World:
    semester = await catalog.semester()
    course = await catalog.course()
    section = await catalog.section(seats=2, semester=semester, course=course)
    me, other = await catalog.students(2)
    body = await api.gql(
        REGISTER,
        api.student_token(other.id),
        i={"studentId": str(other.id), "sectionIds": [str(section.id)]},
    )
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    return World(me, other, section, semester, course)


async def post_graphql(
    api: Api, authorization: str | None, query: str, **variables: Any
) -> httpx.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return await api.client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )


def refused(response: httpx.Response, code: str) -> dict[str, Any]:
    assert response.status_code < 500, response.text
    assert_no_internals(response.text)
    body = response.json()
    assert error_code(body) == code, body
    assert body.get("data") is None or all(v is None for v in body["data"].values()), body
    return body


@pytest.mark.parametrize("header", BAD_CREDENTIALS)
async def test_register_with_a_bad_token_is_unauthenticated_and_changes_nothing(
    api: Api, world: World, header: Header
) -> None:
    before = await footprint(api)
    response = await post_graphql(
        api,
        header(str(world.me.id)),
        REGISTER,
        i={"studentId": str(world.me.id), "sectionIds": [str(world.section.id)]},
    )
    refused(response, "UNAUTHENTICATED")
    assert await footprint(api) == before


async def test_a_token_forged_like_the_table_but_well_formed_is_accepted(
    api: Api, world: World
) -> None:
    """The control of the table above: its tokens fail for their one flaw only."""
    response = await post_graphql(api, "Bearer " + forge(claims(str(world.me.id))), ME)
    assert response.json() == {
        "data": {"me": {"id": str(world.me.id), "studentNumber": world.me.student_number}}
    }


def _operations(w: World) -> list[tuple[str, dict[str, Any]]]:
    """Every contract field that needs a token, with input that would otherwise work."""
    return [
        (REGISTER, {"i": {"studentId": str(w.me.id), "sectionIds": [str(w.section.id)]}}),
        (DROP, {"i": {"studentId": str(w.other.id), "sectionId": str(w.section.id)}}),
        (STUDENT, {"id": str(w.me.id)}),
        (ME, {}),
        (
            CREATE_SEMESTER,
            {
                "i": {
                    "name": "Spring",
                    "startDate": "2027-01-10",
                    "endDate": "2027-05-10",
                    "registrationStart": "2026-11-01T00:00:00Z",
                    "registrationEnd": "2026-12-01T00:00:00Z",
                }
            },
        ),
        (CREATE_COURSE, {"i": {"code": "AUTH101", "name": "Who may"}}),
        (
            CREATE_SECTION,
            {
                "i": {
                    "courseId": str(w.course.id),
                    "semesterId": str(w.semester.id),
                    "sectionNumber": "Z9",
                    "totalSeats": 5,
                }
            },
        ),
        (
            CREATE_STUDENT,
            {
                "i": {
                    "studentNumber": "S-AUTH",
                    "firstName": "Eve",
                    "lastName": "Mallory",
                    "email": "eve@uni.edu",
                }
            },
        ),
        (CAPACITY, {"s": str(w.section.id), "n": 10}),
        (SET_STATUS, {"s": str(w.other.id), "e": "inactive"}),
    ]


OPERATION_NAMES = [
    "register",
    "drop",
    "student",
    "me",
    "createSemester",
    "createCourse",
    "createSection",
    "createStudent",
    "setSectionCapacity",
    "setStudentStatus",
]


@pytest.mark.parametrize("index", range(len(OPERATION_NAMES)), ids=OPERATION_NAMES)
async def test_every_protected_field_without_a_token_is_unauthenticated(
    api: Api, world: World, index: int
) -> None:
    query, variables = _operations(world)[index]
    before = await footprint(api)
    refused(await post_graphql(api, None, query, **variables), "UNAUTHENTICATED")
    refused(
        await post_graphql(api, "Bearer " + forge(claims("x", lifetime=-1)), query, **variables),
        "UNAUTHENTICATED",
    )
    assert await footprint(api) == before


STAFF_ONLY = OPERATION_NAMES[4:]


@pytest.mark.parametrize("index", range(4, len(OPERATION_NAMES)), ids=STAFF_ONLY)
async def test_a_student_calling_a_staff_only_mutation_is_forbidden(
    api: Api, world: World, index: int
) -> None:
    query, variables = _operations(world)[index]
    before = await footprint(api)
    refused(
        await post_graphql(api, f"Bearer {api.student_token(world.me.id)}", query, **variables),
        "FORBIDDEN",
    )
    assert await footprint(api) == before


@pytest.mark.parametrize("index", range(4, len(OPERATION_NAMES)), ids=STAFF_ONLY)
async def test_staff_may_call_every_staff_only_mutation(api: Api, world: World, index: int) -> None:
    query, variables = _operations(world)[index]
    data = await api.staff(query, **variables)
    assert all(v is not None for v in data.values())


FOR_ANOTHER = ["register", "drop", "student"]


@pytest.mark.parametrize("index", range(3), ids=FOR_ANOTHER)
async def test_a_student_acting_for_another_student_is_forbidden(
    api: Api, world: World, index: int
) -> None:
    """`me` holds a valid token and asks about `other`: register, drop (other's seat) or read."""
    on_other: list[tuple[str, dict[str, Any]]] = [
        (
            REGISTER,
            {"i": {"studentId": str(world.other.id), "sectionIds": [str(world.section.id)]}},
        ),
        (DROP, {"i": {"studentId": str(world.other.id), "sectionId": str(world.section.id)}}),
        (STUDENT, {"id": str(world.other.id)}),
    ]
    query, variables = on_other[index]
    before = await footprint(api)
    refused(
        await post_graphql(api, f"Bearer {api.student_token(world.me.id)}", query, **variables),
        "FORBIDDEN",
    )
    assert await footprint(api) == before
    (state,) = await api.container.seats.states([world.section.id])
    assert state is not None and state.available_seats == 1


async def test_a_student_acting_for_a_student_that_does_not_exist_is_forbidden(
    api: Api, world: World
) -> None:
    stranger = uuid.uuid4()
    response = await post_graphql(
        api,
        f"Bearer {api.student_token(world.me.id)}",
        REGISTER,
        i={"studentId": str(stranger), "sectionIds": [str(world.section.id)]},
    )
    refused(response, "FORBIDDEN")


async def test_a_student_acts_for_themself(api: Api, world: World) -> None:
    token = api.student_token(world.me.id)
    body = await api.gql(
        REGISTER, token, i={"studentId": str(world.me.id), "sectionIds": [str(world.section.id)]}
    )
    assert body["data"]["register"]["results"][0]["outcome"] == "ENROLLED"
    body = await api.gql(STUDENT, token, id=str(world.me.id))
    assert body["data"]["student"]["id"] == str(world.me.id)
    dropping = {"studentId": str(world.me.id), "sectionId": str(world.section.id)}
    body = await api.gql(DROP, token, i=dropping)
    assert body["data"]["drop"] == {**dropping, "outcome": "DROPPED", "availableSeats": 1}


async def test_staff_may_register_drop_and_read_for_any_student(api: Api, world: World) -> None:
    staff = api.token()
    body = await api.gql(
        REGISTER, staff, i={"studentId": str(world.me.id), "sectionIds": [str(world.section.id)]}
    )
    assert body["data"]["register"] == {
        "studentId": str(world.me.id),
        "results": [
            {
                "sectionId": str(world.section.id),
                "outcome": "ENROLLED",
                "waitlistPosition": None,
                "availableSeats": 0,
                "reason": None,
            }
        ],
    }
    body = await api.gql(STUDENT, staff, id=str(world.other.id))
    assert body["data"]["student"]["id"] == str(world.other.id)
    dropping = {"studentId": str(world.other.id), "sectionId": str(world.section.id)}
    body = await api.gql(DROP, staff, i=dropping)
    assert body["data"]["drop"] == {**dropping, "outcome": "DROPPED", "availableSeats": 1}


async def test_me_returns_the_student_named_by_the_token(api: Api, world: World) -> None:
    body = await api.gql(ME, api.student_token(world.me.id))
    assert body["data"]["me"] == {"id": str(world.me.id), "studentNumber": world.me.student_number}
    body = await api.gql(ME, api.student_token(world.other.id))
    assert body["data"]["me"]["id"] == str(world.other.id)


async def test_me_for_staff_whose_sub_is_not_a_student_is_null(api: Api, world: World) -> None:
    body = await api.gql(ME, api.token(sub="admin"))
    assert body == {"data": {"me": None}}


async def test_me_for_a_valid_token_of_a_deleted_or_unknown_student_is_null(
    api: Api, world: World
) -> None:
    body = await api.gql(ME, api.student_token(uuid.uuid4()))
    assert body == {"data": {"me": None}}


# REST: the same rules, answered in the envelope with 401 / 403.


def _rest_calls(w: World, student: Any) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) of every REST endpoint, acting for `student`."""
    return [
        (
            "POST",
            "/api/v1/register",
            {"student_id": str(student.id), "section_ids": [str(w.section.id)]},
        ),
        (
            "POST",
            "/api/v1/register/drop",
            {"student_id": str(student.id), "section_id": str(w.section.id)},
        ),
        ("GET", f"/api/v1/students/{student.id}/registrations", None),
        ("GET", f"/api/v1/students/{student.id}/waitlist", None),
        ("GET", f"/api/v1/sections/available?semester_id={w.semester.id}", None),
    ]


REST_NAMES = ["register", "drop", "registrations", "waitlist", "available"]


async def rest(
    api: Api, call: tuple[str, str, dict[str, Any] | None], authorization: str | None
) -> httpx.Response:
    method, path, body = call
    headers = {} if authorization is None else {"Authorization": authorization}
    return await api.client.request(method, path, json=body, headers=headers)


def rest_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert_no_internals(response.text)
    body = response.json()
    assert body["success"] is False and isinstance(body["message"], str) and body["message"]
    assert body["errors"][0]["code"] == code
    assert "data" not in body


REST_BAD_CREDENTIALS = [BAD_CREDENTIALS[i] for i in (0, 3, 4, 7, 8, 9, 10, 12, 14)]


@pytest.mark.parametrize("index", range(len(REST_NAMES)), ids=REST_NAMES)
async def test_rest_endpoints_answer_401_to_a_bad_token_and_change_nothing(
    api: Api, world: World, index: int
) -> None:
    call = _rest_calls(world, world.other)[index]
    before = await footprint(api)
    for case in REST_BAD_CREDENTIALS:
        header: Header = case.values[0]  # type: ignore[assignment]
        response = await rest(api, call, header(str(world.other.id)))
        rest_refused(response, 401, "UNAUTHENTICATED")
    assert await footprint(api) == before


async def test_rest_endpoints_answer_401_before_looking_at_malformed_input(
    api: Api, world: World
) -> None:
    calls: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/register", b"{not json"),
        ("POST", "/api/v1/register/drop", b"[]"),
        ("GET", "/api/v1/students/not-a-uuid/registrations", None),
        ("GET", "/api/v1/students/not-a-uuid/waitlist", None),
        ("GET", "/api/v1/sections/available?semester_id=nope", None),
    ]
    for method, path, content in calls:
        response = await api.client.request(method, path, content=content)
        rest_refused(response, 401, "UNAUTHENTICATED")


@pytest.mark.parametrize("index", range(4), ids=REST_NAMES[:4])
async def test_rest_endpoints_answer_403_to_a_student_acting_for_another(
    api: Api, world: World, index: int
) -> None:
    call = _rest_calls(world, world.other)[index]
    before = await footprint(api)
    response = await rest(api, call, f"Bearer {api.student_token(world.me.id)}")
    rest_refused(response, 403, "FORBIDDEN")
    assert await footprint(api) == before
    (state,) = await api.container.seats.states([world.section.id])
    assert state is not None and state.available_seats == 1


async def test_rest_endpoints_let_staff_act_for_any_student(api: Api, world: World) -> None:
    for call in _rest_calls(world, world.other):
        response = await rest(api, call, f"Bearer {api.token()}")
        assert response.status_code == 200, (call, response.text)
        assert response.json()["success"] is True


async def test_rest_endpoints_let_a_student_act_for_themself(api: Api, world: World) -> None:
    for call in _rest_calls(world, world.other):
        response = await rest(api, call, f"Bearer {api.student_token(world.other.id)}")
        assert response.status_code == 200, (call, response.text)
        assert response.json()["success"] is True
