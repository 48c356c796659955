"""Sections' rule data (SectionRules) read from the record in a fixed number of queries for
any number of sections, and the conversions between the domain's meetings and their rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession

from domain.rules import WEEKDAYS, Meeting, SectionRules, WaitlistMode, minutes
from infrastructure.postgres.models import CourseRow, SectionRow
from infrastructure.postgres.rule_models import (
    CoursePrerequisiteRow,
    SectionLinkRow,
    SectionMeetingRow,
)

# What a SectionRules needs from the sections and courses tables (setup_select joins both).
RULE_COLUMNS = (
    SectionRow.course_id,
    SectionRow.semester_id,
    CourseRow.credits,
    SectionRow.waitlist_capacity,
    SectionRow.waitlist_mode,
    SectionRow.offer_hours,
)


def any_of(column: Any, values: Sequence[Any], item: Any = None) -> Any:
    """`column = ANY($1)` with one array parameter: no limit on how many values (an IN list
    takes one parameter per value, and asyncpg stops at 32,767). UUIDs unless `item`."""
    kind = ARRAY(item if item is not None else PgUUID(as_uuid=True))
    return column == any_(bindparam(None, list(values), type_=kind))


def days_mask(days: Iterable[str]) -> int:
    """Bit 0 Monday to bit 6 Sunday."""
    return sum(1 << WEEKDAYS.index(day) for day in set(days))


def days_of(mask: int) -> tuple[str, ...]:
    return tuple(day for i, day in enumerate(WEEKDAYS) if mask & (1 << i))


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def meeting_values(section_id: UUID, meeting: Meeting) -> dict[str, Any]:
    return {
        "section_id": section_id,
        "days": days_mask(meeting.days),
        "start_minute": minutes(meeting.start_time),
        "end_minute": minutes(meeting.end_time),
        "location": meeting.location,
    }


def meeting_of(row: Any) -> Meeting:
    return Meeting(days_of(row.days), hhmm(row.start_minute), hhmm(row.end_minute), row.location)


def credits_of(value: Decimal) -> float:
    return float(value)


def mode_of(stored: str) -> WaitlistMode:
    return WaitlistMode(stored.upper())


def stored_mode(mode: WaitlistMode) -> str:
    return mode.value.lower()


async def section_rules_of(session: AsyncSession, rows: Sequence[Any]) -> dict[UUID, SectionRules]:
    """SectionRules per section of `rows` (each with section_id and RULE_COLUMNS): three
    queries whatever the number of sections."""
    if not rows:
        return {}
    section_ids = [r.section_id for r in rows]
    course_ids = list({r.course_id for r in rows})
    meetings = await session.execute(
        select(SectionMeetingRow)
        .where(any_of(SectionMeetingRow.section_id, section_ids))
        .order_by(
            SectionMeetingRow.section_id,
            SectionMeetingRow.start_minute,
            SectionMeetingRow.end_minute,
            SectionMeetingRow.days,
            SectionMeetingRow.meeting_id,
        )
    )
    links = await session.execute(
        select(SectionLinkRow.section_id, SectionLinkRow.linked_section_id)
        .where(any_of(SectionLinkRow.section_id, section_ids))
        .order_by(SectionLinkRow.section_id, SectionLinkRow.linked_section_id)
    )
    prerequisites = await session.execute(
        select(CoursePrerequisiteRow.course_id, CoursePrerequisiteRow.prerequisite_id)
        .where(any_of(CoursePrerequisiteRow.course_id, course_ids))
        .order_by(CoursePrerequisiteRow.course_id, CoursePrerequisiteRow.prerequisite_id)
    )
    meetings_of: dict[UUID, list[Meeting]] = defaultdict(list)
    for (meeting,) in meetings:
        meetings_of[meeting.section_id].append(meeting_of(meeting))
    linked: dict[UUID, list[UUID]] = defaultdict(list)
    for section_id, linked_id in links:
        linked[section_id].append(linked_id)
    required: dict[UUID, list[UUID]] = defaultdict(list)
    for course_id, prerequisite_id in prerequisites:
        required[course_id].append(prerequisite_id)
    return {
        r.section_id: SectionRules(
            course_id=r.course_id,
            semester_id=r.semester_id,
            credits=credits_of(r.credits),
            meetings=tuple(meetings_of[r.section_id]),
            linked_sections=tuple(linked[r.section_id]),
            prerequisites=tuple(required[r.course_id]),
            waitlist_capacity=r.waitlist_capacity,
            waitlist_mode=mode_of(r.waitlist_mode),
            offer_hours=r.offer_hours,
        )
        for r in rows
    }


async def load_section_rules(session: AsyncSession, *criteria: Any) -> dict[UUID, SectionRules]:
    """SectionRules of the sections matching `criteria` (none: every section)."""
    statement = (
        select(SectionRow.section_id, *RULE_COLUMNS)
        .join(CourseRow, CourseRow.course_id == SectionRow.course_id)
        .where(*criteria)
    )
    return await section_rules_of(session, (await session.execute(statement)).all())
