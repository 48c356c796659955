"""Who a signed-in student is here: the student number or e-mail an identity provider's
token carries, looked up in students (infrastructure/oidc.py caches the answers)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import StudentRow


class PostgresStudentIdentities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def student_id(
        self, column: Literal["student_number", "email"], value: str
    ) -> UUID | None:
        """The id of the student whose student_number is `value` (exactly), or whose e-mail
        is `value` in any case (providers and registrars disagree about capitals)."""
        if column == "email":
            condition = func.lower(StudentRow.email) == value.lower()
        else:
            condition = StudentRow.student_number == value
        async with unit_of_work(self.sessions) as session:
            found = await session.scalars(select(StudentRow.student_id).where(condition).limit(2))
            ids = list(found)
        return ids[0] if len(ids) == 1 else None
