"""A semester's registrations as the student information system takes them back (`coursereg
export registrations`): one record per student and section, enrolled or waitlisted, with
the natural keys beside the ids. Read in one snapshot and streamed through a server-side
cursor, so a large semester never sits in memory whole."""

from __future__ import annotations

from collections.abc import AsyncIterator
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

# ISO 8601 in UTC, to the microsecond, made by Postgres: the rows come out as text ready to
# write (a Python conversion per value was most of the export's time).
ISO = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''


def iso(column: str) -> str:
    return f"to_char({column} AT TIME ZONE 'UTC', {ISO})"


# Enrolled rows read their semester's partition only; the waitlist is per section, and its
# position is the rank in the section's line (the stored position is the join sequence).
RECORDS = f"""
    SELECT * FROM (
      SELECT sm.semester_name, sm.semester_id::text, st.student_number, st.student_id::text,
             c.course_code, c.course_id::text, s.section_number, s.section_id::text,
             'enrolled' AS status, {iso("r.registration_date")} AS registered_at,
             NULL::bigint AS waitlist_position, NULL AS waitlist_joined_at,
             NULL AS offer_expires_at, r.registration_id::text, NULL AS waitlist_id
      FROM registrations r
      JOIN students st ON st.student_id = r.student_id
      JOIN sections s ON s.section_id = r.section_id
      JOIN courses c ON c.course_id = s.course_id
      JOIN semesters sm ON sm.semester_id = r.semester_id
      WHERE r.semester_id = $1 AND r.status = 'enrolled'
      UNION ALL
      SELECT sm.semester_name, sm.semester_id::text, st.student_number, st.student_id::text,
             c.course_code, c.course_id::text, s.section_number, s.section_id::text,
             'waitlisted', NULL,
             row_number() OVER (PARTITION BY w.section_id ORDER BY w.position),
             {iso("w.timestamp")}, {iso("w.expires_at")}, NULL, w.waitlist_id::text
      FROM waitlist w
      JOIN students st ON st.student_id = w.student_id
      JOIN sections s ON s.section_id = w.section_id
      JOIN courses c ON c.course_id = s.course_id
      JOIN semesters sm ON sm.semester_id = s.semester_id
      WHERE s.semester_id = $1
    ) records
    ORDER BY student_number, course_code, section_number
    """

ROWS_PER_FETCH = 2_000

Record = tuple[Any, ...]  # in COLUMNS' order: text, the waitlist position an int, or None


async def semester_name(engine: AsyncEngine, semester_id: UUID) -> str | None:
    async with engine.connect() as connection:
        found = await connection.scalar(
            text("SELECT semester_name FROM semesters WHERE semester_id = :s"), {"s": semester_id}
        )
    return None if found is None else str(found)


async def registrations(engine: AsyncEngine, semester_id: UUID) -> AsyncIterator[Record]:
    """The semester's records, ordered by student number, course code and section number,
    from one REPEATABLE READ snapshot (enrolled and waitlisted agree with each other).
    asyncpg's cursor directly: SQLAlchemy's stream() fetched the whole result before the
    first row here (measured: 376 MB resident for 260,000 records)."""
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        async with driver.transaction(isolation="repeatable_read", readonly=True):
            async for row in driver.cursor(RECORDS, semester_id, prefetch=ROWS_PER_FETCH):
                yield tuple(row)
