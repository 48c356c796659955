"""A semester's registrations as the student information system takes them back (`coursereg
export registrations`): one record per student and section, enrolled or waitlisted, with
the natural keys beside the ids. Read in one snapshot and streamed through a server-side
cursor, so a large semester never sits in memory whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

# The columns of every record, in the file's order.
COLUMNS = (
    "semester_name",
    "semester_id",
    "student_number",
    "student_id",
    "course_code",
    "course_id",
    "section_number",
    "section_id",
    "status",
    "registered_at",
    "waitlist_position",
    "waitlist_joined_at",
    "offer_expires_at",
    "registration_id",
    "waitlist_id",
)

# Enrolled rows read their semester's partition only; the waitlist is per section, and its
# position is the rank in the section's line (the stored position is the join sequence).
RECORDS = text(
    """
    SELECT * FROM (
      SELECT sm.semester_name, sm.semester_id, st.student_number, st.student_id,
             c.course_code, c.course_id, s.section_number, s.section_id,
             'enrolled' AS status, r.registration_date AS registered_at,
             NULL::bigint AS waitlist_position, NULL::timestamptz AS waitlist_joined_at,
             NULL::timestamptz AS offer_expires_at, r.registration_id, NULL::uuid AS waitlist_id
      FROM registrations r
      JOIN students st ON st.student_id = r.student_id
      JOIN sections s ON s.section_id = r.section_id
      JOIN courses c ON c.course_id = s.course_id
      JOIN semesters sm ON sm.semester_id = r.semester_id
      WHERE r.semester_id = :semester AND r.status = 'enrolled'
      UNION ALL
      SELECT sm.semester_name, sm.semester_id, st.student_number, st.student_id,
             c.course_code, c.course_id, s.section_number, s.section_id,
             'waitlisted', NULL,
             row_number() OVER (PARTITION BY w.section_id ORDER BY w.position),
             w.timestamp, w.expires_at, NULL, w.waitlist_id
      FROM waitlist w
      JOIN students st ON st.student_id = w.student_id
      JOIN sections s ON s.section_id = w.section_id
      JOIN courses c ON c.course_id = s.course_id
      JOIN semesters sm ON sm.semester_id = s.semester_id
      WHERE s.semester_id = :semester
    ) records
    ORDER BY student_number, course_code, section_number
    """
)

ROWS_PER_FETCH = 2_000

Record = dict[str, Any]


async def semester_name(engine: AsyncEngine, semester_id: UUID) -> str | None:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT semester_name FROM semesters WHERE semester_id = :s"), {"s": semester_id}
        )
    return None if found is None else str(found)


async def registrations(engine: AsyncEngine, semester_id: UUID) -> AsyncIterator[Record]:
    """The semester's records, ordered by student number, course code and section number,
    from one REPEATABLE READ snapshot (enrolled and waitlisted agree with each other)."""
    async with engine.connect() as connection:
        connection = await connection.execution_options(
            isolation_level="REPEATABLE READ", yield_per=ROWS_PER_FETCH
        )
        async with connection.begin():
            result = await connection.stream(RECORDS, {"semester": semester_id})
            async for row in result:
                yield dict(zip(COLUMNS, row, strict=True))


def plain(value: Any) -> Any:
    """A record's value as text files carry it: ids as text, times in ISO 8601 (UTC)."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
