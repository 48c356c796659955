"""Reads of the whole record, for rebuilding Redis after it lost its data and for the
reconciler. Never on the hot path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.changes import ENROLLED
from domain.model import SectionSetup
from infrastructure.postgres.catalog import setup_of, setup_select
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import (
    RegistrationRow,
    SectionRow,
    StreamOffsetRow,
    StudentRow,
    WaitlistRow,
)


class PostgresSnapshot:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def setups(self) -> list[SectionSetup]:
        async with unit_of_work(self.sessions) as session:
            rows = (await session.execute(setup_select().order_by(SectionRow.section_id))).all()
        return [setup_of(r) for r in rows]

    async def enrolled(self, section_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
        statement = (
            select(RegistrationRow.section_id, RegistrationRow.student_id)
            .where(RegistrationRow.section_id.in_(section_ids))
            .where(RegistrationRow.status == ENROLLED)
        )
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
