"""The seed design's REST endpoints (reference/rest-api.md) over the same domain, so its
clients keep working. Envelope: {"success", "message", "data"?, "errors"?}."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.catalog import MAX_PAGE
from domain.errors import BadInput, DomainError, ErrorCode, NotFound, Unauthenticated
from domain.model import (
    Actor,
    DropOutcome,
    RegisterOutcome,
    Section,
    SectionQuery,
    SectionResult,
)
from domain.registration import authorize_read
from resolvers.context import Services
from resolvers.loaders import read_schedules

STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.STUDENT_NOT_ELIGIBLE: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.BAD_USER_INPUT: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.UNAVAILABLE: 503,
}
RESULT_STATUS = {
    RegisterOutcome.ENROLLED: "enrolled",
    RegisterOutcome.WAITLISTED: "waitlisted",
    RegisterOutcome.ALREADY_ENROLLED: "already_registered",
    RegisterOutcome.ALREADY_WAITLISTED: "already_registered",
    RegisterOutcome.REJECTED: "failed",
}

Handler = Callable[[Request, Services], Awaitable[JSONResponse]]


def envelope(message: str, data: Any = None, status: int = 200, errors: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"success": status < 400, "message": message}
    if data is not None:
        body["data"] = data
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Refusals become the envelope with the matching status, never a 500."""

    async def run(request: Request) -> JSONResponse:
        try:
            return await handler(request, request.app.state.services)
        except DomainError as exc:
            extra = {"code": exc.code.value, "message": exc.message, **exc.extensions}
            response = envelope(exc.message, status=STATUS.get(exc.code, 500), errors=[extra])
            if "retryAfter" in exc.extensions:
                response.headers["Retry-After"] = str(math.ceil(exc.extensions["retryAfter"]))
            return response

    return run


async def _body(request: Request) -> dict[str, Any]:
    """The app's BodyLimit (COURSEREG_MAX_BODY_BYTES) has refused a body too large with 413."""
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadInput("request body must be JSON") from None
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


def _uuid(value: Any, field: str) -> UUID:
    if not isinstance(value, str):
        raise BadInput(f"{field} must be a UUID string", field=field)
    try:
        return UUID(value)
    except ValueError:
        raise BadInput(f"{field} is not a valid UUID", field=field) from None


def _result(r: SectionResult) -> dict[str, Any]:
    messages = {
        RegisterOutcome.ENROLLED: "Enrolled",
        RegisterOutcome.WAITLISTED: "Added to the waitlist",
        RegisterOutcome.ALREADY_ENROLLED: "Already enrolled",
        RegisterOutcome.ALREADY_WAITLISTED: "Already on the waitlist",
    }
    item: dict[str, Any] = {
        "section_id": str(r.section_id),
        "status": RESULT_STATUS[r.outcome],
        "message": r.reason or messages.get(r.outcome, ""),
    }
    if r.waitlist_position is not None:
        item["waitlist_position"] = r.waitlist_position
    return item


@endpoint
async def register(request: Request, services: Services) -> JSONResponse:
    actor = await _admitted(request, services)
    body = await _body(request)
    student_id = _uuid(body.get("student_id"), "student_id")
    raw_ids = body.get("section_ids")
    if not isinstance(raw_ids, list):
        raise BadInput("section_ids must be a list of UUIDs", field="section_ids")
    section_ids = [_uuid(s, "section_ids") for s in raw_ids]
    key = body.get("idempotency_key") or request.headers.get("idempotency-key")
    if key is not None and not isinstance(key, str):
        raise BadInput("idempotency_key must be a string", field="idempotency_key")
    answer = await services.registrar.register(
        actor, student_id, section_ids, key, request.scope.get("state", {}).get("request_id", "")
    )
    return envelope("Registration processed", {"results": [_result(r) for r in answer.results]})


@endpoint
async def drop(request: Request, services: Services) -> JSONResponse:
    actor = await _admitted(request, services)
    body = await _body(request)
    student_id = _uuid(body.get("student_id"), "student_id")
    section_id = _uuid(body.get("section_id"), "section_id")
    key = body.get("idempotency_key") or request.headers.get("idempotency-key")
    if key is not None and not isinstance(key, str):
        raise BadInput("idempotency_key must be a string", field="idempotency_key")
    answer = await services.registrar.drop(
        actor, student_id, section_id, key, request.scope.get("state", {}).get("request_id", "")
    )
    if answer.outcome is DropOutcome.NOT_REGISTERED:
        raise NotFound("Registration not found")
    if answer.outcome is DropOutcome.LEFT_WAITLIST:
        return envelope("Removed from the waitlist")
    return envelope("Course dropped successfully")


async def _admitted(request: Request, services: Services) -> Actor:
    """The actor of register and drop, within their rate limits (429 and Retry-After)."""
    actor = await _actor(request, services)
    await services.throttle.admit(actor, request.client.host if request.client else None)
    return actor


async def _actor(request: Request, services: Services) -> Actor:
    found = await services.auth.authenticate(request.headers.get("authorization"))
    if found is None:
        raise Unauthenticated("a Bearer token is required")
    return found[0]


async def _student(request: Request, services: Services) -> UUID:
    actor = await _actor(request, services)  # who asks comes first, as on every endpoint
    student_id = _uuid(request.path_params["student_id"], "student_id")
    authorize_read(actor, student_id)
    (student,) = await services.records.students([student_id])
    if student is None:
        raise NotFound(f"student {student_id} not found")
    return student_id


@endpoint
async def registrations(request: Request, services: Services) -> JSONResponse:
    student_id = await _student(request, services)
    (schedule,) = await read_schedules(services.records, services.pending, [student_id])
    data = [
        {
            "registration_id": str(r.id),
            "section_id": str(r.section_id),
            "status": r.status,
            "registration_date": r.registered_at.isoformat(),
            "dropped_date": r.dropped_at.isoformat() if r.dropped_at else None,
        }
        for r in schedule.registrations
    ]
    return envelope("Registrations retrieved", data)


@endpoint
async def waitlist(request: Request, services: Services) -> JSONResponse:
    student_id = await _student(request, services)
    (schedule,) = await read_schedules(services.records, services.pending, [student_id])
    entries = schedule.waitlist
    ranks = await services.seats.ranks(student_id, [e.section_id for e in entries])
    data = [
        {
            "section_id": str(e.section_id),
            "position": rank,
            "joined_at": e.joined_at.isoformat(),
            "expires_at": e.expires_at.isoformat() if e.expires_at else None,
        }
        for e, rank in zip(entries, ranks, strict=True)
        if rank is not None
    ]
    return envelope("Waitlist retrieved", data)


@endpoint
async def available(request: Request, services: Services) -> JSONResponse:
    await _actor(request, services)
    raw = request.query_params.get("semester_id")
    if not raw:
        raise BadInput("semester_id is required", field="semester_id")
    query = SectionQuery(semester_id=_uuid(raw, "semester_id"), available_only=True)
    found = await _all_sections(services, query)
    states = await services.seats.states([s.id for s in found])
    courses = await services.records.courses(list({s.course_id for s in found}))
    by_course = {c.id: c for c in courses if c is not None}
    sections = []
    for section, state in zip(found, states, strict=True):
        if state is None or state.available_seats <= 0:
            continue
        course = by_course.get(section.course_id)
        sections.append(
            {
                "section_id": str(section.id),
                "course_id": str(section.course_id),
                "course_code": course.code if course else None,
                "course_name": course.name if course else None,
                "semester_id": str(section.semester_id),
                "section_number": section.section_number,
                "total_seats": state.total_seats,
                "available_seats": state.available_seats,
                "waitlist_length": state.waitlist_length,
                "is_active": section.is_active,
            }
        )
    return envelope("Available sections retrieved", {"sections": sections})


async def _all_sections(services: Services, query: SectionQuery) -> list[Section]:
    """Every page: the seed API lists all of a semester's open sections, not the first 500."""
    found: list[Section] = []
    after: str | None = None
    while True:
        page = await services.catalog.find_sections(query, MAX_PAGE, after)
        found += page.sections
        if not page.has_next_page or not page.cursors:
            return found
        after = page.cursors[-1]


def routes() -> list[Route]:
    return [
        Route("/api/v1/register", register, methods=["POST"]),
        Route("/api/v1/register/drop", drop, methods=["POST"]),
        Route("/api/v1/students/{student_id}/registrations", registrations, methods=["GET"]),
        Route("/api/v1/students/{student_id}/waitlist", waitlist, methods=["GET"]),
        Route("/api/v1/sections/available", available, methods=["GET"]),
    ]
