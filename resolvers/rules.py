"""The staff's rule mutations: translate the input, call RulesAdmin, wrap the answer."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from resolvers.context import Info
from resolvers.objects import Course, Section, Student, TimeTicket
from schema.rules import Hold, SectionRulesInput


async def set_course_rules(
    info: Info, course_id: UUID, credits: float | None, prerequisite_course_ids: list[UUID] | None
) -> Course:
    course = await info.context.services.rules_admin.set_course_rules(
        info.context.actor, course_id, credits, prerequisite_course_ids
    )
    return Course.of(course)


async def set_section_rules(info: Info, section_id: UUID, input: SectionRulesInput) -> Section:
    section = await info.context.services.rules_admin.set_section_rules(
        info.context.actor, section_id, input.domain()
    )
    return Section.of(section)


async def place_hold(info: Info, student_id: UUID, reason: str) -> Hold:
    hold = await info.context.services.rules_admin.place_hold(
        info.context.actor, student_id, reason
    )
    return Hold.of(hold)


async def lift_hold(info: Info, hold_id: UUID) -> Student:
    student = await info.context.services.rules_admin.lift_hold(info.context.actor, hold_id)
    return Student.of(student)


async def set_time_ticket(
    info: Info, student_id: UUID, semester_id: UUID, opens_at: datetime, closes_at: datetime
) -> TimeTicket:
    ticket = await info.context.services.rules_admin.set_time_ticket(
        info.context.actor, student_id, semester_id, opens_at, closes_at
    )
    return TimeTicket.of(ticket)


async def set_max_credits(info: Info, student_id: UUID, max_credits: float) -> Student:
    student = await info.context.services.rules_admin.set_max_credits(
        info.context.actor, student_id, max_credits
    )
    return Student.of(student)


async def record_completed_course(info: Info, student_id: UUID, course_id: UUID) -> Student:
    student = await info.context.services.rules_admin.record_completed_course(
        info.context.actor, student_id, course_id
    )
    return Student.of(student)
