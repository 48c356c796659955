"""The five invariants of DESIGN.md, checked in Redis and (after draining) in Postgres."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from infrastructure.container import Container
from infrastructure.state.reconcile import Reconciler, live_sections


@dataclass
class Answers:
    """What clients were told, to prove nothing acknowledged was lost: the last answer
    per (student, section). Each client's requests for a pair are sequential."""

    last: dict[tuple[UUID, UUID], str] = field(default_factory=dict)
    count: int = 0

    def record(self, student: UUID, section: UUID, outcome: str) -> None:
        self.count += 1
        if outcome in ("ENROLLED", "WAITLISTED", "DROPPED", "LEFT_WAITLIST"):
            self.last[(student, section)] = outcome


def reflected(outcome: str, status: str | None, waiting: bool) -> bool:
    """Whether Postgres (the registration's status, a waitlist row) still shows an answer
    given: a WAITLISTED student may since have been promoted."""
    return {
        "ENROLLED": status == "enrolled",
        "WAITLISTED": waiting or status == "enrolled",
        "DROPPED": status == "dropped" and not waiting,
        "LEFT_WAITLIST": not waiting and status != "enrolled",
    }[outcome]


async def check_redis(container: Container, section_ids: list[UUID]) -> dict[str, int]:
    """No oversell, seat count consistent, one place per student (Redis, at any instant)."""
    states = await live_sections(container.redis, container.keys, section_ids)
    oversold = duplicates = 0
    for sid, state in zip(section_ids, states, strict=True):
        assert state is not None, f"section {sid} has no live state"
        oversold += max(0, len(state.enrolled) - state.total)
        duplicates += len(state.enrolled & set(state.waitlist))
        duplicates += len(state.waitlist) - len(set(state.waitlist))
        assert state.seats == state.total - len(state.enrolled) - state.held, (sid, state)
        assert state.seats >= 0
    assert oversold == 0, f"oversold {oversold}"
    assert duplicates == 0, f"duplicates {duplicates}"
    return {"oversold": oversold, "duplicates": duplicates}


async def check_postgres(
    container: Container, database_url: str, section_ids: list[UUID]
) -> dict[str, int]:
    """After draining: Postgres equals Redis for every section (convergence, FIFO order),
    no oversell, no student both enrolled and waiting."""
    report = await Reconciler(
        container.redis, container.keys, container.snapshot, container.state
    ).run(only=set(section_ids))
    assert report.ok, [(d.section_id, d.problems) for d in report.drifted]
    connection = await asyncpg.connect(database_url)
    try:
        oversold = await connection.fetchval(
            """SELECT count(*) FROM sections s WHERE s.section_id = ANY($1::uuid[]) AND
               (SELECT count(*) FROM registrations r WHERE r.section_id = s.section_id
                AND r.status = 'enrolled') > s.total_seats""",
            section_ids,
        )
        both = await connection.fetchval(
            """SELECT count(*) FROM waitlist w JOIN registrations r USING (student_id, section_id)
               WHERE r.status = 'enrolled' AND w.section_id = ANY($1::uuid[])""",
            section_ids,
        )
    finally:
        await connection.close()
    assert oversold == 0 and both == 0, (oversold, both)
    return {"sections": report.sections, "oversold": oversold, "duplicates": both}


async def check_answers_persisted(database_url: str, answers: Answers) -> dict[str, int]:
    """Every ENROLLED / WAITLISTED / DROPPED / LEFT_WAITLIST answer is reflected in Postgres:
    enrolled stays enrolled, waitlisted is waiting or was promoted, dropped is a dropped
    registration, left is neither enrolled nor waiting."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT student_id, section_id, status FROM registrations")
        waiting = await connection.fetch("SELECT student_id, section_id FROM waitlist")
    finally:
        await connection.close()
    status = {(r["student_id"], r["section_id"]): r["status"] for r in rows}
    on_list = {(w["student_id"], w["section_id"]) for w in waiting}
    lost = []
    for pair, outcome in answers.last.items():
        found = status.get(pair)
        if not reflected(outcome, found, pair in on_list):
            lost.append((pair, outcome, found, pair in on_list))
    assert not lost, f"lost {len(lost)} acknowledged answers, e.g. {lost[:3]}"
    return {"answers": answers.count, "rows": len(rows) + len(waiting), "lost": len(lost)}
