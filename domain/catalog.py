"""Staff work on the catalog: validation, the record in Postgres, then the live state."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from uuid import UUID

from domain.errors import BadInput, Forbidden, NotFound
from domain.model import (
    ENROLLMENT_STATUSES,
    Actor,
    Course,
    Section,
    SectionPage,
    SectionQuery,
    Semester,
    Student,
)
from domain.ports import Catalog, SeatStore, StudentDirectory
from domain.promotion import Promotion

MAX_SEATS = 100_000
MAX_PAGE = 500


def require_staff(actor: Actor) -> None:
    if not actor.is_staff:
        raise Forbidden("this operation is for staff only")


def require_text(field: str, value: str, max_length: int) -> str:
    text = value.strip()
    if not text:
        raise BadInput(f"{field} must not be empty", field=field)
    if len(text) > max_length:
        raise BadInput(f"{field} must be at most {max_length} characters", field=field)
    require_no_controls(field, text)
    return text


def require_no_controls(field: str, text: str) -> None:
    # Postgres cannot take NUL in text, and no name, code or filter needs a control character.
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise BadInput(f"{field} must not contain control characters", field=field)


def require_seats(total_seats: int) -> None:
    if not 1 <= total_seats <= MAX_SEATS:
        raise BadInput(f"totalSeats must be between 1 and {MAX_SEATS}", field="totalSeats")


def require_aware(field: str, moment: datetime) -> None:
    if moment.tzinfo is None:
        raise BadInput(f"{field} needs a time zone offset", field=field)
    try:
        # Stored in UTC and read back as a Python datetime, which ends at year 9999.
        moment.astimezone(UTC)
    except OverflowError:
        raise BadInput(f"{field} is out of range in UTC", field=field) from None


@dataclass(slots=True)
class CatalogService:
    catalog: Catalog
    seats: SeatStore
    students: StudentDirectory
    promoter: Promotion  # where seats added by a capacity raise go

    async def create_semester(
        self,
        actor: Actor,
        name: str,
        start_date: date,
        end_date: date,
        registration_start: datetime,
        registration_end: datetime,
    ) -> Semester:
        require_staff(actor)
        name = require_text("name", name, 50)
        require_aware("registrationStart", registration_start)
        require_aware("registrationEnd", registration_end)
        if end_date < start_date:
            raise BadInput("endDate must not be before startDate", field="endDate")
        if registration_end <= registration_start:
            raise BadInput(
                "registrationEnd must be after registrationStart", field="registrationEnd"
            )
        return await self.catalog.create_semester(
            name, start_date, end_date, registration_start, registration_end
        )

    async def create_course(self, actor: Actor, code: str, name: str) -> Course:
        require_staff(actor)
        # Upper-cased before the length check: "ß".upper() is "SS", longer than the input.
        return await self.catalog.create_course(
            require_text("code", code.upper(), 20), require_text("name", name, 200)
        )

    async def create_section(
        self,
        actor: Actor,
        course_id: UUID,
        semester_id: UUID,
        section_number: str,
        total_seats: int,
    ) -> Section:
        require_staff(actor)
        number = require_text("sectionNumber", section_number, 10)
        require_seats(total_seats)
        section = await self.catalog.create_section(course_id, semester_id, number, total_seats)
        setup = await self.catalog.section_setup(section.id)
        assert setup is not None, "a section just created has its setup"
        await self.seats.open_section(setup)
        return section

    async def create_student(
        self, actor: Actor, student_number: str, first_name: str, last_name: str, email: str
    ) -> Student:
        require_staff(actor)
        address = require_text("email", email, 255)
        if "@" not in address:
            raise BadInput("email must be an address", field="email")
        student = await self.catalog.create_student(
            require_text("studentNumber", student_number, 20),
            require_text("firstName", first_name, 100),
            require_text("lastName", last_name, 100),
            address,
        )
        await self.students.created(student.id, student.enrollment_status)
        return student

    async def set_student_status(self, actor: Actor, student_id: UUID, status: str) -> Student:
        require_staff(actor)
        if status not in ENROLLMENT_STATUSES:
            allowed = ", ".join(ENROLLMENT_STATUSES)
            raise BadInput(f"enrollmentStatus must be one of {allowed}", field="enrollmentStatus")
        student = await self.catalog.set_student_status(student_id, status)
        if student is None:
            raise NotFound(f"student {student_id} not found")
        await self.students.remember(student_id, status)
        return student

    async def set_section_capacity(
        self, actor: Actor, section_id: UUID, total_seats: int, request_id: str = ""
    ) -> Section:
        """Raising promotes the waitlist at once, in the store's script; the new total reaches
        Postgres through the stream, in order with those promotions."""
        require_staff(actor)
        require_seats(total_seats)
        (section,) = await self.catalog.sections([section_id])
        if section is None:
            raise NotFound(f"section {section_id} not found")
        found = await self.seats.set_capacity(
            section_id, total_seats, request_id, self.promoter.checked
        )
        if found is None:
            raise NotFound(f"section {section_id} has no live state")
        change, holders = found
        if not change.ok:
            raise BadInput(
                f"totalSeats {total_seats} is below the {change.enrolled} seats taken",
                field="totalSeats",
                enrolled=change.enrolled,
            )
        await self.promoter.pass_on(holders, request_id)
        return section

    async def find_sections(
        self, query: SectionQuery, first: int, after: str | None
    ) -> SectionPage:
        if not 0 <= first <= MAX_PAGE:
            raise BadInput(f"first must be between 0 and {MAX_PAGE}", field="first")
        if query.course_code is not None:
            require_no_controls("courseCode", query.course_code)
        available: set[UUID] | None = None
        if query.available_only:
            ids = await self.catalog.section_ids(query)
            states = await self.seats.states(ids)
            available = {s.section_id for s in states if s and s.available_seats > 0}
        return await self.catalog.find_sections(query, first, after, available)
