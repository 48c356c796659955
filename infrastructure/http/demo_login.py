"""The student app's "sign in as" picker for demos (COURSEREG_DEMO_LOGIN=true, `make demo`):
GET /demo/students lists a few active students, POST /demo/token mints a student token for
one of them. It hands a token to anyone who asks, so with the setting off (the default)
the routes do not exist and both answer 404."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from domain.errors import ErrorCode, Unavailable
from domain.model import Role
from infrastructure.container import Container
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import StudentRow
from infrastructure.settings import Settings

PICKER_SIZE = 8


def _error(status: int, code: ErrorCode, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


async def students(request: Request) -> JSONResponse:
    """The first few active students by student number: the demo's cast."""
    container: Container = request.app.state.container
    statement = (
        select(StudentRow)
        .where(StudentRow.enrollment_status == "active")
        .order_by(StudentRow.student_number)
        .limit(PICKER_SIZE)
    )
    try:
        async with unit_of_work(container.sessions) as session:
            rows = (await session.execute(statement)).scalars().all()
    except Unavailable as exc:
        return _error(503, ErrorCode.UNAVAILABLE, str(exc))
    return JSONResponse(
        {
            "students": [
                {
                    "id": str(row.student_id),
                    "studentNumber": row.student_number,
                    "name": f"{row.first_name} {row.last_name}",
                }
                for row in rows
            ]
        }
    )


async def token(request: Request) -> JSONResponse:
    """A student token for {"studentId": ...}, an existing student."""
    container: Container = request.app.state.container
    try:
        asked = await request.json()
        student_id = uuid.UUID(str(asked["studentId"]))
    except (ValueError, KeyError, TypeError, RecursionError):
        return _error(400, ErrorCode.BAD_USER_INPUT, 'send {"studentId": "<uuid>"}')
    try:
        async with unit_of_work(container.sessions) as session:
            found = await session.get(StudentRow, student_id)
    except Unavailable as exc:
        return _error(503, ErrorCode.UNAVAILABLE, str(exc))
    if found is None:
        return _error(404, ErrorCode.NOT_FOUND, "no such student")
    return JSONResponse({"token": container.tokens.issue(Role.STUDENT, str(student_id))})


def routes(settings: Settings) -> list[BaseRoute]:
    if not settings.demo_login:
        return []
    return [
        Route("/demo/students", students, methods=["GET"]),
        Route("/demo/token", token, methods=["POST"]),
    ]
