"""A catalog where the registration rules bite: sections in pairs that meet at the same hours
(a student may hold one of each pair), 3 credits each, a credit limit of two sections, and
2 or 3 seats. It is laid out through the staff's GraphQL on a running `coursereg serve`, and
it judges a snapshot of Postgres by the rules it was made with: nobody over the limit or
holding a clash, and no seat free while the head of its line could take it."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from domain.model import Role
from tests.conftest import Catalog
from tests.faults.cluster import Deployment
from tests.integration.test_rules import COURSE_RULES, MAX_CREDITS, SECTION_RULES

CREDITS = 3.0
MAX = 6.0
DAYS = ("MON", "WED")
FIRST_START = 8 * 60  # minutes after midnight
LENGTH, GAP = 75, 15
# Why a student leaves a line without asking (confirm.lua): the attempts log keeps these.
RULE_REASONS = ("HOLD", "DUPLICATE_COURSE", "TIME_CONFLICT", "CREDIT_LIMIT")


def clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass
class Timetable:
    students: list[UUID]
    seats: dict[UUID, int] = field(default_factory=dict)
    slot: dict[UUID, int] = field(default_factory=dict)  # the pair a section belongs to

    @property
    def sections(self) -> list[UUID]:
        return list(self.seats)

    def partner(self, section: UUID) -> UUID:
        return next(s for s, p in self.slot.items() if p == self.slot[section] and s != section)

    def clash(self, a: UUID, b: UUID) -> bool:
        return a != b and self.slot[a] == self.slot[b]

    def breaks(self, held: set[UUID], section: UUID) -> str | None:
        """The rule `section` would break next to `held`, or None."""
        if any(self.clash(h, section) for h in held):
            return "TIME_CONFLICT"
        if CREDITS * (len(held - {section}) + 1) > MAX:
            return "CREDIT_LIMIT"
        return None


async def lay_out(
    deployed: Deployment, url: str, rng: random.Random, pairs: int = 7, students: int = 50
) -> Timetable:
    """One open semester, `pairs` pairs of sections (each its own 3-credit course; the two of
    a pair meet at the same hours; 2 or 3 seats, chosen by `rng`) and `students` active
    students limited to 6 credits; the rules set through GraphQL as staff do."""
    catalog = Catalog(deployed.container)
    semester = await catalog.semester()
    people = await catalog.students(students)
    table = Timetable([p.id for p in people])
    courses: list[UUID] = []
    for pair in range(pairs):
        for _ in range(2):
            course = await catalog.course()
            section = await catalog.section(rng.choice((2, 3)), semester, course)
            table.seats[section.id], table.slot[section.id] = section.total_seats, pair
            courses.append(course.id)
    token = deployed.container.tokens.issue(Role.STAFF, "chaos-staff")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def staff(query: str, **variables: Any) -> None:
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert "errors" not in response.json(), response.text

        await asyncio.gather(*(staff(COURSE_RULES, c=str(c), cr=CREDITS) for c in courses))
        for section, pair in table.slot.items():
            start = FIRST_START + pair * (LENGTH + GAP)
            meeting = {
                "days": list(DAYS),
                "startTime": clock(start),
                "endTime": clock(start + LENGTH),
            }
            await staff(SECTION_RULES, s=str(section), i={"meetings": [meeting]})
        await asyncio.gather(*(staff(MAX_CREDITS, s=str(s), m=MAX) for s in table.students))
    return table


@dataclass
class Snapshot:
    """Postgres after the drain: who is enrolled, each line in order, and when each student
    was last put off a line for a rule (attempts log)."""

    totals: dict[UUID, int]
    enrolled: dict[UUID, set[UUID]]  # section -> students
    lines: dict[UUID, list[tuple[UUID, UUID | None]]]  # section -> (student, swap_from)
    removed: dict[tuple[UUID, UUID], datetime]

    def holdings(self) -> dict[UUID, set[UUID]]:
        held: dict[UUID, set[UUID]] = defaultdict(set)
        for section, students in self.enrolled.items():
            for student in students:
                held[student].add(section)
        return held


async def snapshot(database_url: str, table: Timetable) -> Snapshot:
    ids = table.sections
    connection = await asyncpg.connect(database_url)
    try:
        totals = await connection.fetch(
            "SELECT section_id, total_seats FROM sections WHERE section_id = ANY($1)", ids
        )
        enrolled = await connection.fetch(
            """SELECT section_id, student_id FROM registrations
               WHERE status = 'enrolled' AND section_id = ANY($1)""",
            ids,
        )
        waiting = await connection.fetch(
            """SELECT section_id, student_id, swap_from FROM waitlist
               WHERE section_id = ANY($1) ORDER BY position""",
            ids,
        )
        removed = await connection.fetch(
            """SELECT student_id, section_id, max(attempted_at) AS at FROM registration_attempts
               WHERE reason = ANY($1) GROUP BY student_id, section_id""",
            list(RULE_REASONS),
        )
    finally:
        await connection.close()
    found = Snapshot({r[0]: r[1] for r in totals}, defaultdict(set), defaultdict(list), {})
    for row in enrolled:
        found.enrolled[row[0]].add(row[1])
    for row in waiting:
        found.lines[row[0]].append((row[1], row[2]))
    found.removed = {(r["student_id"], r["section_id"]): r["at"] for r in removed}
    return found


def rule_breaches(table: Timetable, found: Snapshot) -> list[str]:
    """Oversold sections, students over the limit or holding a clash, students both enrolled
    and waiting in a section: each one a line naming it, with its figures."""
    problems = []
    for section, students in found.enrolled.items():
        if len(students) > found.totals[section]:
            problems.append(
                f"oversold: {len(students)} enrolled in {found.totals[section]} "
                f"seats of section {section}"
            )
        both = students & {s for s, _ in found.lines.get(section, [])}
        problems += [f"both enrolled and waiting: {s} in {section}" for s in both]
    for student, held in found.holdings().items():
        if CREDITS * len(held) > MAX:
            problems.append(
                f"over the credit limit: {student} holds {CREDITS * len(held):g} "
                f"credits of {MAX:g} ({len(held)} sections)"
            )
        clashing = sorted({table.slot[s] for s in held if table.partner(s) in held})
        problems += [f"clash: {student} holds both sections of pair {p}" for p in clashing]
    return problems


def free_seats_with_a_line(table: Timetable, found: Snapshot) -> list[str]:
    """A section with a free seat and anyone waiting: the promotion should have given the
    seat to the head of the line or taken the head off it for a rule. Each case is a line
    saying whether the head could take the seat now."""
    problems, held = [], found.holdings()
    for section, line in found.lines.items():
        free = found.totals[section] - len(found.enrolled.get(section, set()))
        if free <= 0 or not line:
            continue
        head, swap_from = line[0]
        mine = held.get(head, set()) - ({swap_from} if swap_from else set())
        broken = table.breaks(mine, section)
        could = "could take it" if broken is None else f"could not ({broken})"
        problems.append(
            f"free seat while waiting: section {section} has {free} free of "
            f"{found.totals[section]} and {len(line)} waiting; the head {could}"
        )
    return problems
