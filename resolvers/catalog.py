"""Catalog reads and the staff mutations."""

from __future__ import annotations

from uuid import UUID

from domain.model import SectionQuery
from domain.registration import authorize_read
from resolvers.context import Info
from resolvers.objects import Course, Section, Student
from schema.types import (
    Connection,
    CreateCourseInput,
    CreateSectionInput,
    CreateSemesterInput,
    CreateStudentInput,
    Edge,
    PageInfo,
    SectionFilter,
    Semester,
)
from schema.unset import given


async def section(info: Info, id: UUID) -> Section | None:
    found = await info.context.loaders.sections.load(id)
    return Section.of(found) if found else None


async def sections(
    info: Info, filter: SectionFilter | None, first: int | None, after: str | None
) -> Connection[Section]:
    query = SectionQuery()
    if filter is not None:
        query = SectionQuery(
            semester_id=given(filter.semester_id),
            course_code=given(filter.course_code) or None,  # "" names no course either
            available_only=bool(filter.available_only),
        )
    page = await info.context.services.catalog.find_sections(
        query,
        50 if first is None else first,
        given(after) or None,
    )
    edges = [
        Edge(cursor=c, node=Section.of(s)) for s, c in zip(page.sections, page.cursors, strict=True)
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page, end_cursor=page.cursors[-1] if page.cursors else None
        ),
        total_count=page.total_count,
    )


async def semesters(info: Info) -> list[Semester]:
    return [Semester.of(s) for s in await info.context.services.records.all_semesters()]


async def student(info: Info, id: UUID) -> Student | None:
    authorize_read(info.context.actor, id)
    found = await info.context.loaders.students.load(id)
    return Student.of(found) if found else None


async def me(info: Info) -> Student | None:
    actor = info.context.actor
    try:
        student_id = UUID(actor.subject)
    except ValueError:
        return None  # a staff token whose subject is not a student
    found = await info.context.loaders.students.load(student_id)
    return Student.of(found) if found else None


async def create_semester(info: Info, input: CreateSemesterInput) -> Semester:
    created = await info.context.services.catalog.create_semester(
        info.context.actor,
        input.name,
        input.start_date,
        input.end_date,
        input.registration_start,
        input.registration_end,
    )
    return Semester.of(created)


async def create_course(info: Info, input: CreateCourseInput) -> Course:
    created = await info.context.services.catalog.create_course(
        info.context.actor, input.code, input.name
    )
    return Course.of(created)


async def create_section(info: Info, input: CreateSectionInput) -> Section:
    created = await info.context.services.catalog.create_section(
        info.context.actor,
        input.course_id,
        input.semester_id,
        input.section_number,
        input.total_seats,
    )
    return Section.of(created)


async def create_student(info: Info, input: CreateStudentInput) -> Student:
    created = await info.context.services.catalog.create_student(
        info.context.actor, input.student_number, input.first_name, input.last_name, input.email
    )
    return Student.of(created)


async def set_section_capacity(info: Info, section_id: UUID, total_seats: int) -> Section:
    updated = await info.context.services.catalog.set_section_capacity(
        info.context.actor, section_id, total_seats, info.context.request_id
    )
    return Section.of(updated)


async def set_student_status(info: Info, student_id: UUID, enrollment_status: str) -> Student:
    updated = await info.context.services.catalog.set_student_status(
        info.context.actor, student_id, enrollment_status
    )
    return Student.of(updated)
