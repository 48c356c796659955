"""The end of a run, once the streams are drained: Postgres equals Redis (tests/invariants.py),
every pair a client was answered about shows its last change, and the rules hold in the
record too (no student over the limit or in clashing sections)."""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations
from uuid import UUID

import asyncpg

from infrastructure.container import Container
from tests.explorer.checks import Violation
from tests.explorer.model import OUTCOME_OF_CHANGE, Model
from tests.explorer.world import CREDITS, World
from tests.invariants import Answers, check_answers_persisted, check_postgres


async def check_record(
    container: Container, database_url: str, world: World, model: Model
) -> list[Violation]:
    found = []
    ids = [s.id for s in world.sections]
    try:
        await check_postgres(container, database_url, ids)
    except AssertionError as exc:
        found.append(Violation("postgres-differs", "record", str(exc)))
    answers = Answers()
    pairs = {
        (student, str(section))
        for answer in model.answers
        for kind, section, student in answer.needs
        if student and kind in OUTCOME_OF_CHANGE
    }
    for student, section in sorted(pairs):
        answers.record(UUID(student), UUID(section), model.history[(student, section)][-1])
    try:
        await check_answers_persisted(database_url, answers)
    except AssertionError as exc:
        found.append(Violation("answer-not-persisted", "record", str(exc)))
    return found + await _rules(database_url, world)


async def _rules(database_url: str, world: World) -> list[Violation]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT student_id, section_id FROM registrations WHERE status = 'enrolled'"
        )
    finally:
        await connection.close()
    enrolled: dict[UUID, list[UUID]] = defaultdict(list)
    for row in rows:
        enrolled[row["student_id"]].append(row["section_id"])
    found = []
    for st in world.students:
        mine = [world.section(s) for s in enrolled.get(st.id, [])]
        if CREDITS * len(mine) > st.max_credits + 1e-9:
            found.append(
                Violation(
                    "record-credit-limit", st.name, f"enrolled in {sorted(s.name for s in mine)}"
                )
            )
        for a, b in combinations(mine, 2):
            if a.interval[0] < b.interval[1] and b.interval[0] < a.interval[1]:
                found.append(Violation("record-time-clash", st.name, f"{a.name} and {b.name}"))
    return found
