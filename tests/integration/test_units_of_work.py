"""Every staff write is one unit of work: no use case makes two writes to the record, and the
one write of each commits all its statements or none. Each test makes a late statement of
a write fail and finds the earlier ones not committed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.exc import IntegrityError

from domain.rule_records import SectionRulesChange, TimeTicket
from domain.rules import Meeting
from infrastructure.postgres.rules import TICKETS_PER_STATEMENT
from tests.conftest import Api, Catalog
from tests.footprint import error_code, footprint

COURSE_RULES = """mutation($c: UUID!, $cr: Float, $p: [UUID!]) {
  setCourseRules(courseId: $c, credits: $cr, prerequisiteCourseIds: $p) { id } }"""


async def test_course_credits_are_not_kept_when_the_prerequisites_make_a_cycle(
    api: Api, catalog: Catalog
) -> None:
    """The course row is updated (and locked) first; the cycle is found after it."""
    a, b = await catalog.course(), await catalog.course()
    await api.staff(COURSE_RULES, c=str(a.id), p=[str(b.id)])
    before = await footprint(api)
    body = await api.gql(COURSE_RULES, api.token(), c=str(b.id), cr=4.0, p=[str(a.id)])
    assert error_code(body) == "BAD_USER_INPUT"
    assert await footprint(api) == before


async def test_a_section_rules_change_whose_links_fail_keeps_nothing_of_it(
    api: Api, catalog: Catalog
) -> None:
    """Capacity and meetings are written before the links; a link to no section (which the
    use case refuses earlier, so the record is called directly) fails the last statement."""
    section = await catalog.section(seats=5)
    before = await footprint(api)
    change = SectionRulesChange(
        meetings=(Meeting(("MON",), "09:00", "09:50"),),
        linked_sections=(uuid.uuid4(),),
        waitlist_capacity=3,
    )
    with pytest.raises(IntegrityError):
        await api.container.rule_records.set_section_rules(section.id, change)
    assert await footprint(api) == before


async def test_time_tickets_written_in_several_statements_are_all_kept_or_none(
    api: Api, catalog: Catalog
) -> None:
    """A bulk ticket write past one statement's rows: a bad window in the last statement
    leaves none of the first statement's tickets."""
    semester = await catalog.semester()
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        students = [
            r[0]
            for r in await connection.fetch(
                "INSERT INTO students (student_number, first_name, last_name, email)"
                " SELECT 'U' || n, 'Ada', 'Lovelace', 'u' || n || '@uni.edu'"
                " FROM generate_series(1, $1) AS n RETURNING student_id",
                TICKETS_PER_STATEMENT + 1,
            )
        ]
        opens = datetime.now(UTC)
        tickets = [TimeTicket(s, semester.id, opens, opens + timedelta(hours=1)) for s in students]
        tickets[-1] = TimeTicket(students[-1], semester.id, opens, opens)  # closes as it opens
        with pytest.raises(IntegrityError):
            await api.container.rule_records.set_time_tickets(tickets)
        assert await connection.fetchval("SELECT count(*) FROM time_tickets") == 0
    finally:
        await connection.close()
