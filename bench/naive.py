"""The naive baseline: register done on Postgres alone, as one would build it without the
Redis hot path. Per section one transaction on the seed's tables: lock the section row
(SELECT ... FOR UPDATE), count its enrolled registrations and look for the student's,
insert the registration (or the waitlist row), COMMIT. The row lock is held across the
transaction's round trips, so one hot section serializes every request for it.

It has the Registrar's `register` signature, so the GraphQL stack can call it unchanged.
Statements are prepared once per connection (asyncpg's cache): a generous baseline."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from domain.errors import NotEligible, NotFound
from domain.model import ACTIVE, Actor, RegisterAnswer, RegisterOutcome, Rejection, SectionResult
from domain.registration import authorize, check_key, check_sections

POOL_SIZE = 50  # a realistic pool; more connections only add lock waiters

STUDENT = "SELECT enrollment_status FROM students WHERE student_id = $1"
LOCK = """
SELECT s.total_seats, s.is_active,
       now() BETWEEN m.registration_start AND m.registration_end AS open
FROM sections s JOIN semesters m USING (semester_id)
WHERE s.section_id = $1
FOR UPDATE OF s"""
STANDING = """
SELECT count(*) FILTER (WHERE r.status = 'enrolled') AS enrolled,
       coalesce(bool_or(r.student_id = $2 AND r.status = 'enrolled'), false) AS mine,
       (SELECT count(*) FROM waitlist w WHERE w.section_id = $1) AS line,
       (SELECT count(*) FROM waitlist w WHERE w.section_id = $1 AND w.position <=
          (SELECT position FROM waitlist WHERE section_id = $1 AND student_id = $2)) AS rank
FROM registrations r WHERE r.section_id = $1"""
ENROL = """
INSERT INTO registrations (semester_id, student_id, section_id, status)
SELECT semester_id, $1, $2, 'enrolled' FROM sections WHERE section_id = $2
ON CONFLICT (semester_id, student_id, section_id) DO UPDATE
SET status = 'enrolled', registration_date = now(), dropped_date = NULL,
    updated_at = now(), version = registrations.version + 1"""
JOIN = """
INSERT INTO waitlist (student_id, section_id, position)
VALUES ($1, $2, (SELECT coalesce(max(position), 0) + 1 FROM waitlist WHERE section_id = $2))"""
ENROLLED, WAITLISTED = RegisterOutcome.ENROLLED, RegisterOutcome.WAITLISTED


async def make_pool(database_url: str, size: int = POOL_SIZE) -> asyncpg.Pool:
    return await asyncpg.create_pool(database_url, min_size=size, max_size=size)


class RowLockRegistrar:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def register(
        self,
        actor: Actor,
        student_id: UUID,
        section_ids: Sequence[UUID],
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> RegisterAnswer:
        authorize(actor, student_id)
        check_sections(section_ids)
        check_key(idempotency_key)
        async with self.pool.acquire() as connection:
            status = await connection.fetchval(STUDENT, student_id)
            if status is None:
                raise NotFound(f"student {student_id} not found")
            if status != ACTIVE:
                raise NotEligible(f"student is {status}, not active", enrollmentStatus=status)
            results = [await self._one(connection, student_id, sid) for sid in section_ids]
        return RegisterAnswer(student_id, tuple(results))

    async def _one(
        self, connection: asyncpg.Connection, student: UUID, section: UUID
    ) -> SectionResult:
        async with connection.transaction():
            row = await connection.fetchrow(LOCK, section)
            if row is None:
                return _rejected(section, Rejection.SECTION_NOT_FOUND, None)
            total = row["total_seats"]
            if not row["is_active"]:
                return _rejected(section, Rejection.SECTION_INACTIVE, total)
            if not row["open"]:
                return _rejected(section, Rejection.REGISTRATION_CLOSED, total)
            now = await connection.fetchrow(STANDING, section, student)
            seats = max(total - now["enrolled"], 0)
            if now["mine"]:
                return SectionResult(section, RegisterOutcome.ALREADY_ENROLLED, seats)
            if now["rank"]:
                return SectionResult(
                    section, RegisterOutcome.ALREADY_WAITLISTED, seats, now["rank"]
                )
            if seats > 0:
                await connection.execute(ENROL, student, section)
                return SectionResult(section, ENROLLED, seats - 1)
            await connection.execute(JOIN, student, section)
            return SectionResult(section, WAITLISTED, 0, now["line"] + 1)


def _rejected(section: UUID, reason: Rejection, seats: int | None) -> SectionResult:
    return SectionResult(section, RegisterOutcome.REJECTED, seats, None, reason)


async def oversold(pool: asyncpg.Pool, section_ids: list[UUID]) -> dict[str, int]:
    """The baseline's invariants in Postgres: enrolled <= seats, one place per student."""
    async with pool.acquire() as connection:
        over = await connection.fetchval(
            """SELECT coalesce(sum(greatest(n - total_seats, 0)), 0) FROM (
                 SELECT s.total_seats, (SELECT count(*) FROM registrations r WHERE
                   r.section_id = s.section_id AND r.status = 'enrolled') AS n
                 FROM sections s WHERE s.section_id = ANY($1::uuid[])) t""",
            section_ids,
        )
        both = await connection.fetchval(
            """SELECT count(*) FROM waitlist w JOIN registrations r USING (student_id, section_id)
               WHERE r.status = 'enrolled' AND w.section_id = ANY($1::uuid[])""",
            section_ids,
        )
    return {"oversold": int(over), "duplicates": int(both)}
