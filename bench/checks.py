"""The invariants checked after each product variant (DESIGN.md), as counts for the table:
oversold and duplicate places in Redis right after the run; once the streams are drained,
drift between Redis and Postgres (the Reconciler), oversold in Postgres, and acknowledged
answers missing from Postgres (lost)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from infrastructure.container import Container
from infrastructure.state.reconcile import Reconciler, live_sections
from tests.invariants import reflected


async def redis_invariants(container: Container, sections: list[UUID]) -> dict[str, int]:
    states = await live_sections(container.redis, container.keys, sections)
    oversold = duplicates = miscounted = 0
    for state in states:
        if state is None:
            miscounted += 1
            continue
        oversold += max(0, len(state.enrolled) - state.total)
        duplicates += len(state.enrolled & set(state.waitlist))
        duplicates += len(state.waitlist) - len(set(state.waitlist))
        miscounted += state.seats != state.total - len(state.enrolled) or state.seats < 0
    return {"oversold": oversold, "duplicates": duplicates, "seat_count_wrong": miscounted}


async def postgres_invariants(
    container: Container, database_url: str, sections: list[UUID]
) -> dict[str, int]:
    report = await Reconciler(
        container.redis, container.keys, container.snapshot, container.state
    ).run(only=set(sections))
    connection = await asyncpg.connect(database_url)
    try:
        oversold = await connection.fetchval(
            """SELECT coalesce(sum(greatest(n - total_seats, 0)), 0) FROM (
                 SELECT s.total_seats, (SELECT count(*) FROM registrations r WHERE
                   r.section_id = s.section_id AND r.status = 'enrolled') AS n
                 FROM sections s WHERE s.section_id = ANY($1::uuid[])) t""",
            sections,
        )
    finally:
        await connection.close()
    return {"drifted_sections": len(report.drifted), "oversold_postgres": int(oversold)}


async def lost_answers(database_url: str, answers: dict[tuple[UUID, UUID], str]) -> int:
    """Answers not reflected in Postgres: ENROLLED must be an enrolled registration,
    WAITLISTED a waitlist row (or an enrolment, after a promotion), DROPPED a dropped
    registration, LEFT_WAITLIST neither."""
    sections = list({section for _, section in answers})
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT student_id, section_id, status FROM registrations "
            "WHERE section_id = ANY($1::uuid[])",
            sections,
        )
        waiting = await connection.fetch(
            "SELECT student_id, section_id FROM waitlist WHERE section_id = ANY($1::uuid[])",
            sections,
        )
    finally:
        await connection.close()
    status = {(r["student_id"], r["section_id"]): r["status"] for r in rows}
    on_list = {(w["student_id"], w["section_id"]) for w in waiting}
    return sum(
        not reflected(outcome, status.get(pair), pair in on_list)
        for pair, outcome in answers.items()
    )
