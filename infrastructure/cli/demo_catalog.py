"""The demo catalog `coursereg seed-demo` loads (demo.py is the command): a realistic
catalog for a newcomer to click around in. One open semester, 50 courses, 200 sections of
varied sizes (a few tiny ones, to see waitlists), 5,000 students. Rows go in by bulk INSERT;
then Redis is made to match (sections' live state, students' statuses) the way a rebuild
would, so a running API sees them at once."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from infrastructure.container import Container
from infrastructure.postgres.catalog import load_setups
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import CourseRow, SectionRow, SemesterRow, StudentRow

SEMESTER_NAME = "Demo semester"
COURSES = 50
SECTIONS = 200
STUDENTS = 5_000
CHUNK = 1_000
SUBJECTS = ("CS", "MATH", "PHYS", "CHEM", "BIO", "HIST", "ECON", "PSYC", "ENGL", "PHIL")
TOPICS = (
    "Foundations",
    "Methods",
    "Theory",
    "Laboratory",
    "Seminar",
    "Systems",
    "Analysis",
    "Practice",
)
LEVELS = ("Introduction to", "Intermediate", "Advanced", "Topics in", "Applied")
# Seats per section and how often each size occurs: mostly classes of 20-60, a few lecture
# halls, and a few seminars small enough to fill at once.
SIZES = (3, 5, 10, 20, 25, 30, 40, 60, 120, 250)
SIZE_WEIGHTS = (3, 4, 8, 16, 16, 16, 14, 12, 7, 4)
FIRST = ("Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Radia", "Ken")
LAST = ("Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus")
# Most students may register; a few may not, so eligibility refusals show too.
STATUSES = ("active",) * 96 + ("suspended", "inactive", "graduated", "withdrawn")

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class DemoCatalog:
    semester_id: uuid.UUID
    courses: int
    sections: int
    students: int
    seeded: bool  # False: it was there already
    sample_student: uuid.UUID | None = None


def plan_rows(rng: random.Random, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """Every row of the demo catalog, made up deterministically from `rng`."""
    today = now.date()
    semester_id = uuid.uuid4()
    semester = {
        "semester_id": semester_id,
        "semester_name": SEMESTER_NAME,
        "start_date": today + timedelta(days=30),
        "end_date": today + timedelta(days=150),
        "registration_start": now - timedelta(hours=1),
        "registration_end": now + timedelta(days=30),
    }
    courses = []
    for i in range(COURSES):
        subject = SUBJECTS[i % len(SUBJECTS)]
        number = 100 * (1 + i // len(SUBJECTS)) + rng.randrange(1, 99)
        courses.append(
            {
                "course_id": uuid.uuid4(),
                "course_code": f"{subject}{number}",
                "course_name": f"{rng.choice(LEVELS)} {subject} {rng.choice(TOPICS)}",
            }
        )
    # 200 sections over 50 courses, 1 to 7 each.
    per_course = [1 + rng.randrange(7) for _ in courses]
    while sum(per_course) != SECTIONS:
        i = rng.randrange(len(per_course))
        step = 1 if sum(per_course) < SECTIONS else -1
        per_course[i] = min(7, max(1, per_course[i] + step))
    sections = [
        {
            "section_id": uuid.uuid4(),
            "course_id": course["course_id"],
            "semester_id": semester_id,
            "section_number": f"{n + 1:03d}",
            "total_seats": rng.choices(SIZES, SIZE_WEIGHTS)[0],
        }
        for course, count in zip(courses, per_course, strict=True)
        for n in range(count)
    ]
    students = [
        {
            "student_id": uuid.uuid4(),
            "student_number": f"D{n:07d}",
            "first_name": rng.choice(FIRST),
            "last_name": rng.choice(LAST),
            "email": f"student{n:05d}@demo.coursereg.test",
            "enrollment_status": rng.choice(STATUSES),
        }
        for n in range(1, STUDENTS + 1)
    ]
    return {
        "semesters": [semester],
        "courses": courses,
        "sections": sections,
        "students": students,
    }


def total_steps() -> int:
    """Progress units: rows inserted, then sections and students loaded into Redis."""
    return 1 + COURSES + 2 * SECTIONS + 2 * STUDENTS


async def existing(container: Container) -> DemoCatalog | None:
    async with unit_of_work(container.sessions) as session:
        found = await session.scalar(
            select(SemesterRow.semester_id).where(SemesterRow.semester_name == SEMESTER_NAME)
        )
    if found is None:
        return None
    return DemoCatalog(found, COURSES, SECTIONS, STUDENTS, seeded=False)


async def seed_demo(
    container: Container, progress: Progress = lambda n: None, seed: int = 2026
) -> DemoCatalog:
    """Seed once; a second call finds the demo semester and changes nothing."""
    found = await existing(container)
    if found is not None:
        return found
    rows = plan_rows(random.Random(seed), datetime.now(UTC))
    tables = (
        (SemesterRow, rows["semesters"]),
        (CourseRow, rows["courses"]),
        (SectionRow, rows["sections"]),
        (StudentRow, rows["students"]),
    )
    async with unit_of_work(container.sessions) as session:
        for table, values in tables:
            for i in range(0, len(values), CHUNK):
                await session.execute(insert(table), values[i : i + CHUNK])
                progress(len(values[i : i + CHUNK]))
    await _load_live_state(container, rows, progress)
    semester_id = rows["semesters"][0]["semester_id"]
    active = next(s for s in rows["students"] if s["enrollment_status"] == "active")
    return DemoCatalog(
        semester_id,
        len(rows["courses"]),
        len(rows["sections"]),
        len(rows["students"]),
        seeded=True,
        sample_student=active["student_id"],
    )


async def _load_live_state(
    container: Container, rows: dict[str, list[dict[str, Any]]], progress: Progress
) -> None:
    """The sections' seats and the students' statuses in Redis, as a rebuild would put
    them. Shards not loaded yet are loaded whole by the API's start (StateLoader)."""
    ids = [row["section_id"] for row in rows["sections"]]
    async with unit_of_work(container.sessions) as session:
        setups = await load_setups(session, SectionRow.section_id.in_(ids))
    for i in range(0, len(setups), CHUNK):
        await container.state.load(setups[i : i + CHUNK])
        progress(len(setups[i : i + CHUNK]))
    statuses = [(row["student_id"], row["enrollment_status"]) for row in rows["students"]]
    await container.students.store_all(statuses, created=True)
    progress(len(statuses))
