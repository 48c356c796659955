"""The GraphQL operations the tests and the bench send, and the ways a student sends them.

One selection per operation (every field a test reads), so a test that compares two answers
compares the same shape, and a change of the contract is made here once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from tests.conftest import Api

REGISTER = (
    "mutation Register($i: RegisterInput!) { register(input: $i) { studentId "
    "results { sectionId outcome waitlistPosition availableSeats reason } } }"
)
DROP = (
    "mutation Drop($i: DropInput!) { drop(input: $i) { studentId sectionId outcome "
    "availableSeats } }"
)
SWAP = "mutation Swap($i: SwapInput!) { swap(input: $i) { outcome reason waitlistPosition } }"
CAPACITY = """mutation($s: UUID!, $n: Int!) { setSectionCapacity(sectionId: $s, totalSeats: $n) {
  id totalSeats availableSeats waitlistLength } }"""
SET_STATUS = """mutation($s: UUID!, $e: String!) {
  setStudentStatus(studentId: $s, enrollmentStatus: $e) { id enrollmentStatus } }"""


class Identified(Protocol):
    """A student or section as a test's catalog made it."""

    @property
    def id(self) -> UUID: ...


def register_input(
    student: UUID, sections: Iterable[UUID], key: str | None = None
) -> dict[str, Any]:
    asked: dict[str, Any] = {"studentId": str(student), "sectionIds": [str(s) for s in sections]}
    if key is not None:
        asked["idempotencyKey"] = key
    return asked


def drop_input(student: UUID, section: UUID, key: str | None = None) -> dict[str, Any]:
    asked = {"studentId": str(student), "sectionId": str(section)}
    if key is not None:
        asked["idempotencyKey"] = key
    return asked


async def register(api: Api, student: Identified, *sections: Identified) -> dict[str, Any]:
    """The whole answer (data or errors) to the student registering themself."""
    asked = register_input(student.id, [s.id for s in sections])
    return await api.gql(REGISTER, api.student_token(student.id), i=asked)


async def registered(api: Api, student: Identified, *sections: Identified) -> list[dict[str, Any]]:
    """The results of a register that must not be refused."""
    body = await register(api, student, *sections)
    assert "errors" not in body, body
    return list(body["data"]["register"]["results"])


async def outcome(api: Api, student: Identified, section: Identified) -> str:
    """The outcome of registering for one section."""
    (result,) = await registered(api, student, section)
    return str(result["outcome"])


async def drop(api: Api, student: Identified, section: Identified) -> dict[str, Any]:
    """The drop's answer, which must not be refused."""
    asked = drop_input(student.id, section.id)
    body = await api.gql(DROP, api.student_token(student.id), i=asked)
    assert "errors" not in body, body
    return dict(body["data"]["drop"])
