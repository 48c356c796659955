"""Students' rule state (StudentRules) read from the record in four queries, for some
students (the staff operations, DataLoaders) or all of them (the rebuild)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.rules import StudentRules
from infrastructure.postgres.models import StudentRow
from infrastructure.postgres.rule_models import CompletedCourseRow, HoldRow, TimeTicketRow
from infrastructure.postgres.section_rules import any_of, credits_of


def _only(statement: Any, column: Any, ids: Sequence[UUID] | None) -> Any:
    return statement if ids is None else statement.where(any_of(column, ids))


async def student_rules_of(
    session: AsyncSession, ids: Sequence[UUID] | None = None
) -> dict[UUID, StudentRules]:
    """Per known student of `ids` (None: every student)."""
    limits = await session.execute(
        _only(select(StudentRow.student_id, StudentRow.max_credits), StudentRow.student_id, ids)
    )
    holds = await session.execute(
        _only(
            select(HoldRow.student_id, func.count())
            .where(HoldRow.lifted_at.is_(None))
            .group_by(HoldRow.student_id),
            HoldRow.student_id,
            ids,
        )
    )
    tickets = await session.execute(
        _only(
            select(
                TimeTicketRow.student_id,
                TimeTicketRow.semester_id,
                TimeTicketRow.opens_at,
                TimeTicketRow.closes_at,
            ),
            TimeTicketRow.student_id,
            ids,
        )
    )
    completed = await session.execute(
        _only(
            select(CompletedCourseRow.student_id, CompletedCourseRow.course_id),
            CompletedCourseRow.student_id,
            ids,
        )
    )
    held = {student_id: int(count) for student_id, count in holds}
    windows: dict[UUID, dict[UUID, tuple[datetime, datetime]]] = defaultdict(dict)
    for student_id, semester_id, opens_at, closes_at in tickets:
        windows[student_id][semester_id] = (opens_at, closes_at)
    done: dict[UUID, set[UUID]] = defaultdict(set)
    for student_id, course_id in completed:
        done[student_id].add(course_id)
    return {
        student_id: StudentRules(
            student_id=student_id,
            holds=held.get(student_id, 0),
            max_credits=credits_of(max_credits),
            tickets=dict(windows[student_id]),
            completed_courses=frozenset(done[student_id]),
        )
        for student_id, max_credits in limits
    }
