"""The bench's catalog, written straight into the seed's tables (asyncpg COPY): one open
semester, a course per group of sections, and a pool of active students shared by every
variant. Each variant gets sections of its own, so none sees another's registrations."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import asyncpg

# Seats per section in the rush, and how often each size occurs (as in `seed-demo`).
SIZES = (3, 5, 10, 20, 25, 30, 40, 60, 120, 250)
SIZE_WEIGHTS = (3, 4, 8, 16, 16, 16, 14, 12, 7, 4)


@dataclass(frozen=True)
class BenchCatalog:
    semester_id: UUID
    students: list[UUID]
    groups: dict[str, list[UUID]]
    seats: dict[UUID, int]

    def sections(self, group: str) -> list[UUID]:
        return self.groups[group]


def rush_sizes(count: int, rng: random.Random) -> list[int]:
    return rng.choices(SIZES, SIZE_WEIGHTS, k=count)


async def create_catalog(
    database_url: str, groups: dict[str, list[int]], students: int, seed: int = 7
) -> BenchCatalog:
    """`groups`: name -> the seats of each of its sections."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    semester_id = uuid.UUID(int=rng.getrandbits(128), version=4)
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(
                """INSERT INTO semesters (semester_id, semester_name, start_date, end_date,
                   registration_start, registration_end) VALUES ($1, $2, $3, $4, $5, $6)""",
                semester_id,
                "Bench semester",
                date(2030, 9, 1),
                date(2030, 12, 20),
                now - timedelta(hours=1),
                now + timedelta(days=1),
            )
            made: dict[str, list[UUID]] = {}
            seats: dict[UUID, int] = {}
            courses, rows = [], []
            for n, (group, sizes) in enumerate(groups.items()):
                made[group] = []
                # A course per section: a student may hold one section per course (rules).
                for i, size in enumerate(sizes):
                    course_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                    courses.append((course_id, f"B{n:02d}-{i:04d}", f"Bench {group} {i}"))
                    section_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                    made[group].append(section_id)
                    seats[section_id] = size
                    rows.append((section_id, course_id, semester_id, "001", size))
            await connection.copy_records_to_table(
                "courses", records=courses, columns=["course_id", "course_code", "course_name"]
            )
            await connection.copy_records_to_table(
                "sections",
                records=rows,
                columns=["section_id", "course_id", "semester_id", "section_number", "total_seats"],
            )
            student_ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(students)]
            await connection.copy_records_to_table(
                "students",
                records=[
                    (sid, f"B{n:08d}", "Bench", "Student", f"b{n:08d}@bench.test", "active")
                    for n, sid in enumerate(student_ids)
                ],
                columns=[
                    "student_id",
                    "student_number",
                    "first_name",
                    "last_name",
                    "email",
                    "enrollment_status",
                ],
            )
    finally:
        await connection.close()
    return BenchCatalog(semester_id, student_ids, made, seats)
