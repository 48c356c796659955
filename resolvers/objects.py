"""The contract's object types with the fields that read more than their row: through the
request's DataLoaders, and live counts from the reservation store, never from Postgres.
Each subclasses its data type in schema/types.py and keeps its GraphQL name."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import strawberry

from domain.registration import authorize_read
from domain.rule_records import TimeTicket as TicketRecord
from domain.rules import DEFAULT_CREDITS, DEFAULT_MAX_CREDITS, SectionRules
from domain.rules_admin import require_attempts_page
from resolvers.context import Info
from schema import notifications as notes
from schema import types
from schema.rules import Hold, Meeting, WaitlistMode
from schema.types import RegistrationStatus, Semester
from schema.unset import given


@strawberry.type
class Course(types.Course):
    @strawberry.field
    async def sections(
        self, info: Info, semester_id: UUID | None = strawberry.UNSET
    ) -> list[Section]:
        rows = await info.context.loaders.course_sections.load((self.id, given(semester_id)))
        return [Section.of(s) for s in rows]

    @strawberry.field
    async def credits(self, info: Info) -> float:
        found = await info.context.loaders.course_rules.load(self.id)
        return found.credits if found else DEFAULT_CREDITS

    @strawberry.field
    async def prerequisites(self, info: Info) -> list[Course]:
        found = await info.context.loaders.course_rules.load(self.id)
        return await _courses(info, found.prerequisites if found else ())


@strawberry.type
class Section(types.Section):
    @strawberry.field
    async def course(self, info: Info) -> Course:
        course = await info.context.loaders.courses.load(self.course_id)
        assert course is not None, "a section's course exists (foreign key)"
        return Course.of(course)

    @strawberry.field
    async def semester(self, info: Info) -> Semester:
        return await _semester(info, self.semester_id)

    @strawberry.field
    async def total_seats(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.total_seats if state else self.recorded_total

    @strawberry.field(description="Live count from the reservation store, never negative.")
    async def available_seats(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.available_seats if state else 0

    @strawberry.field
    async def waitlist_length(self, info: Info) -> int:
        state = await info.context.loaders.seat_states.load(self.id)
        return state.waitlist_length if state else 0

    async def _rules(self, info: Info) -> SectionRules:
        found = await info.context.loaders.section_rules.load(self.id)
        return found or SectionRules(self.course_id, self.semester_id)

    @strawberry.field
    async def meetings(self, info: Info) -> list[Meeting]:
        return [Meeting.of(m) for m in (await self._rules(info)).meetings]

    @strawberry.field(
        description="Sections of which the student must hold one to hold this one "
        "(lecture and lab)."
    )
    async def linked_sections(self, info: Info) -> list[Section]:
        linked = (await self._rules(info)).linked_sections
        found = await info.context.loaders.sections.load_many(linked)
        return [Section.of(s) for s in found if s is not None]

    @strawberry.field(description="Null means unlimited.")
    async def waitlist_capacity(self, info: Info) -> int | None:
        return (await self._rules(info)).waitlist_capacity

    @strawberry.field
    async def waitlist_mode(self, info: Info) -> WaitlistMode:
        return WaitlistMode.of((await self._rules(info)).waitlist_mode)

    @strawberry.field(description="Hours an OFFER stays open.")
    async def offer_hours(self, info: Info) -> int:
        return (await self._rules(info)).offer_hours


async def _section(info: Info, section_id: UUID) -> Section:
    section = await info.context.loaders.sections.load(section_id)
    assert section is not None, "a registration's section exists (foreign key)"
    return Section.of(section)


async def _semester(info: Info, semester_id: UUID) -> Semester:
    semester = await info.context.loaders.semesters.load(semester_id)
    assert semester is not None, "a section's or ticket's semester exists (foreign key)"
    return Semester.of(semester)


async def _courses(info: Info, course_ids: Sequence[UUID]) -> list[Course]:
    """By code: sets of courses (prerequisites, completed ones) have no order of their own."""
    found = await info.context.loaders.courses.load_many(course_ids)
    return sorted((Course.of(c) for c in found if c is not None), key=lambda c: c.code)


@strawberry.type
class Registration(types.Registration):
    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class WaitlistEntry(types.WaitlistEntry):
    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class TimeTicket(types.TimeTicket):
    @strawberry.field
    async def semester(self, info: Info) -> Semester:
        return await _semester(info, self.semester_id)


@strawberry.type
class Notification(notes.Notification):
    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class RegistrationAttempt(types.RegistrationAttempt):
    @strawberry.field
    async def section(self, info: Info) -> Section:
        return await _section(info, self.section_id)


@strawberry.type
class Student(types.Student):
    # Both read the schedule with the student's answered writes in, persisted or not.
    @strawberry.field
    async def registrations(
        self, info: Info, status: RegistrationStatus | None = strawberry.UNSET
    ) -> list[Registration]:
        wanted = given(status)
        schedule = await info.context.loaders.schedules.load(self.id)
        return [
            Registration.of(r)
            for r in schedule.registrations
            if wanted is None or r.status == wanted.value.lower()
        ]

    @strawberry.field
    async def waitlist(self, info: Info) -> list[WaitlistEntry]:
        entries = (await info.context.loaders.schedules.load(self.id)).waitlist
        ranks = await info.context.services.seats.ranks(self.id, [e.section_id for e in entries])
        return [
            WaitlistEntry(
                position=rank,
                joined_at=e.joined_at,
                expires_at=e.expires_at,
                section_id=e.section_id,
            )
            for e, rank in zip(entries, ranks, strict=True)
            if rank is not None  # promoted or left since the schedule was read
        ]

    @strawberry.field
    async def holds(self, info: Info) -> list[Hold]:
        return [Hold.of(h) for h in await info.context.loaders.holds.load(self.id)]

    @strawberry.field
    async def max_credits(self, info: Info) -> float:
        found = await info.context.loaders.student_rules.load(self.id)
        return found.max_credits if found else DEFAULT_MAX_CREDITS

    @strawberry.field(
        description="Credits enrolled in the semester (waitlisted sections do not count)."
    )
    async def credits(self, info: Info, semester_id: UUID) -> float:
        return await info.context.loaders.credits.load((self.id, semester_id))

    @strawberry.field
    async def completed_courses(self, info: Info) -> list[Course]:
        found = await info.context.loaders.student_rules.load(self.id)
        return await _courses(info, list(found.completed_courses) if found else [])

    @strawberry.field
    async def time_ticket(self, info: Info, semester_id: UUID) -> TimeTicket | None:
        found = await info.context.loaders.student_rules.load(self.id)
        window = found.tickets.get(semester_id) if found else None
        if window is None:
            return None
        return TimeTicket.of(TicketRecord(self.id, semester_id, *window))

    @strawberry.field(
        description="Refused attempts, newest first: for the student themself, advisors and staff."
    )
    async def registration_attempts(
        self, info: Info, first: int | None = 50
    ) -> list[RegistrationAttempt]:
        # The student themself, an advisor or staff.
        authorize_read(info.context.actor, self.id)
        wanted = 50 if first is None else first
        require_attempts_page(wanted)
        found = await info.context.loaders.attempts.load((self.id, wanted))
        return [RegistrationAttempt.of(a) for a in found]

    @strawberry.field(
        description="E-mail on or off per kind (every kind listed; on unless turned off): "
        "the student themself or staff."
    )
    async def notification_preferences(self, info: Info) -> list[notes.NotificationPreference]:
        found = await info.context.services.notifications.email_preferences(
            info.context.actor, self.id
        )
        return [notes.NotificationPreference(kind=kind, email=on) for kind, on in found]

    @strawberry.field(
        description="What this student was told of, newest first, with each channel's "
        "delivery state: the student themself or staff."
    )
    async def notifications(self, info: Info, first: int | None = 50) -> list[Notification]:
        found = await info.context.services.notifications.notifications(
            info.context.actor, self.id, 50 if first is None else first
        )
        return [Notification.of(n) for n in found]
