"""Reads of the whole record, for rebuilding Redis after it lost its data and for the
reconciler. Never on the hot path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import null, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.changes import ENROLLED
from domain.model import SectionSetup
from domain.rules import HeldSection, Holding, StudentRules
from infrastructure.postgres.catalog import load_setups
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import (
    RegistrationRow,
    SectionRow,
    StreamOffsetRow,
    StudentRow,
    WaitlistRow,
)
from infrastructure.postgres.section_rules import any_of, load_section_rules
from infrastructure.postgres.student_rules import student_rules_of


def semesters_of(setups: Sequence[SectionSetup]) -> list[UUID] | None:
    """The semesters of these sections, when every setup names its own (load_setups' do)."""
    if any(s.rules is None for s in setups):
        return None
    return list({s.rules.semester_id for s in setups if s.rules is not None})


class PostgresSnapshot:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def setups(self) -> list[SectionSetup]:
        async with unit_of_work(self.sessions) as session:
            return await load_setups(session)

    async def enrolled(
        self, section_ids: Sequence[UUID], semester_ids: Sequence[UUID] | None = None
    ) -> dict[UUID, list[UUID]]:
        """Per section, its enrolled students. Given the sections' semesters (semesters_of),
        the read touches only those semesters' partitions of registrations."""
        statement = (
            select(RegistrationRow.section_id, RegistrationRow.student_id)
            .where(RegistrationRow.section_id.in_(section_ids))
            .where(RegistrationRow.status == ENROLLED)
        )
        if semester_ids is not None:
            statement = statement.where(any_of(RegistrationRow.semester_id, semester_ids))
        grouped: dict[UUID, list[UUID]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            for section_id, student_id in await session.execute(statement):
                grouped[section_id].append(student_id)
        return grouped

    async def waitlists(self, section_ids: Sequence[UUID]) -> dict[UUID, list[tuple[int, UUID]]]:
        """Per section, (join sequence, student) in join order."""
        statement = (
            select(WaitlistRow.section_id, WaitlistRow.position, WaitlistRow.student_id)
            .where(WaitlistRow.section_id.in_(section_ids))
            .order_by(WaitlistRow.section_id, WaitlistRow.position)
        )
        grouped: dict[UUID, list[tuple[int, UUID]]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            for section_id, position, student_id in await session.execute(statement):
                grouped[section_id].append((position, student_id))
        return grouped

    async def offers(self, section_ids: Sequence[UUID]) -> dict[UUID, list[tuple[UUID, datetime]]]:
        """Per section, the students offered a seat and when the offer lapses."""
        statement = select(
            WaitlistRow.section_id, WaitlistRow.student_id, WaitlistRow.expires_at
        ).where(WaitlistRow.section_id.in_(section_ids), WaitlistRow.expires_at.is_not(None))
        grouped: dict[UUID, list[tuple[UUID, datetime]]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            for section_id, student_id, expires_at in await session.execute(statement):
                if expires_at is not None:
                    grouped[section_id].append((student_id, expires_at))
        return grouped

    async def student_statuses(self) -> list[tuple[UUID, str]]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(
                select(StudentRow.student_id, StudentRow.enrollment_status)
            )
            return [(r[0], r[1]) for r in rows]

    async def watermarks(self) -> dict[int, str]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(select(StreamOffsetRow.shard, StreamOffsetRow.last_id))
            return {shard: last_id for shard, last_id in rows}

    async def all_student_rules(self) -> list[StudentRules]:
        """Every student's rule state: holds, credit limit, time tickets, completed courses."""
        async with unit_of_work(self.sessions) as session:
            return list((await student_rules_of(session)).values())

    async def holdings(self) -> dict[tuple[UUID, UUID], list[HeldSection]]:
        """Per (student, semester), the sections enrolled in, then those waited for, each
        with its rules (and, for a swap's pending place, the section it replaces)."""
        enrolled = select(
            RegistrationRow.student_id, RegistrationRow.section_id, null().label("swap_from")
        ).where(RegistrationRow.status == ENROLLED)
        waiting = select(WaitlistRow.student_id, WaitlistRow.section_id, WaitlistRow.swap_from)
        held = select(enrolled.subquery().c.section_id).union(
            select(waiting.subquery().c.section_id)
        )
        grouped: dict[tuple[UUID, UUID], list[HeldSection]] = defaultdict(list)
        async with unit_of_work(self.sessions) as session:
            rules = await load_section_rules(session, SectionRow.section_id.in_(held))
            for statement, holding in (
                (enrolled.order_by(RegistrationRow.section_id), Holding.ENROLLED),
                (waiting.order_by(WaitlistRow.section_id), Holding.WAITING),
            ):
                for student_id, section_id, swap_from in await session.execute(statement):
                    found = rules[section_id]
                    grouped[(student_id, found.semester_id)].append(
                        HeldSection(section_id, found, holding, swap_from)
                    )
        return grouped
