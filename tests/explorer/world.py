"""A run's world, drawn from its seed: one open semester, 2-4 sections of 1-2 seats (three
credits each, meetings clashing in pairs, AUTO or OFFER mode) and 3-5 students with a
credit limit of 6 (some 3). Ids come from the seed too, so the shards, and with them a
replay, are the same every time. Installed in Postgres and loaded into Redis by the
product's own cold start (StateLoader.ensure)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from domain.rule_records import SectionRulesChange
from domain.rules import Meeting, WaitlistMode
from infrastructure.container import Container
from infrastructure.postgres.models import CourseRow, SectionRow, SemesterRow, StudentRow

CREDITS = 3.0
DAY_START = 9 * 60  # pair p meets on Monday at 09:00 + 2p hours, for an hour


@dataclass(frozen=True, slots=True)
class Lifetimes:
    """Deadlines scaled down so that "time passes" is a short real sleep (the scripts read
    Redis TIME, which a test cannot move); a request's reservation lives longer than a run
    of steps usually takes, so the sweeper meets a live request mostly when time is made
    to pass, not by chance."""

    reservation_ms: int = 250
    grace_ms: int = 100
    offer_ms: int = 150

    @property
    def sweep_after_ms(self) -> int:
        return 2 * self.reservation_ms  # as RedisRuleStore does


@dataclass(frozen=True, slots=True)
class SectionPlan:
    index: int
    id: UUID
    course_id: UUID
    seats: int
    offer: bool

    @property
    def name(self) -> str:
        return f"S{self.index}"

    @property
    def start(self) -> int:
        return DAY_START + 120 * (self.index // 2)

    @property
    def interval(self) -> tuple[int, int]:
        """Minutes of the week (Monday), as the scripts count them."""
        return (self.start, self.start + 60)

    def meeting(self) -> Meeting:
        return Meeting(("MON",), f"{self.start // 60:02d}:00", f"{self.start // 60 + 1:02d}:00")


@dataclass(frozen=True, slots=True)
class StudentPlan:
    index: int
    id: UUID
    max_credits: float

    @property
    def name(self) -> str:
        return f"st{self.index}"


@dataclass(frozen=True, slots=True)
class World:
    semester_id: UUID
    sections: tuple[SectionPlan, ...]
    students: tuple[StudentPlan, ...]

    def names(self) -> dict[str, str]:
        named: dict[str, str] = {str(self.semester_id): "sem"}
        for s in self.sections:
            named[str(s.id)] = s.name
            named[str(s.course_id)] = f"C{s.index}"
        for st in self.students:
            named[str(st.id)] = st.name
        return named

    def section(self, section_id: UUID) -> SectionPlan:
        return next(s for s in self.sections if s.id == section_id)

    def student(self, student_id: UUID) -> StudentPlan:
        return next(s for s in self.students if s.id == student_id)


def _id(rng: random.Random) -> UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def plan_world(rng: random.Random) -> World:
    sections = tuple(
        SectionPlan(i, _id(rng), _id(rng), rng.choice((1, 1, 2)), rng.random() < 0.35)
        for i in range(rng.randint(2, 4))
    )
    students = tuple(
        StudentPlan(i, _id(rng), 3.0 if rng.random() < 0.25 else 6.0)
        for i in range(rng.randint(3, 5))
    )
    return World(_id(rng), sections, students)


def fixed_world(sections: list[tuple[int, bool]], limits: list[float]) -> World:
    """A world written by hand (seats and OFFER mode per section, a limit per student),
    for the named interleavings; its ids are fixed too."""
    rng = random.Random(0)
    planned = tuple(
        SectionPlan(i, _id(rng), _id(rng), seats, offer)
        for i, (seats, offer) in enumerate(sections)
    )
    students = tuple(StudentPlan(i, _id(rng), limit) for i, limit in enumerate(limits))
    return World(_id(rng), planned, students)


async def install(world: World, container: Container, lifetimes: Lifetimes) -> None:
    now = datetime.now(UTC)
    tag = world.semester_id.hex[:8]
    async with container.sessions.begin() as session:
        session.add(
            SemesterRow(
                semester_id=world.semester_id,
                semester_name=f"Explore {tag}",
                start_date=date(2026, 9, 1),
                end_date=date(2026, 12, 20),
                registration_start=now - timedelta(days=1),
                registration_end=now + timedelta(days=30),
            )
        )
        for s in world.sections:
            session.add(
                CourseRow(
                    course_id=s.course_id,
                    course_code=f"X{tag}{s.index}",
                    course_name=f"Course {s.index}",
                    credits=Decimal(CREDITS),
                )
            )
        await session.flush()  # sections refer to both; no relationship() orders them
        for s in world.sections:
            session.add(
                SectionRow(
                    section_id=s.id,
                    course_id=s.course_id,
                    semester_id=world.semester_id,
                    section_number=s.name,
                    total_seats=s.seats,
                )
            )
        for st in world.students:
            session.add(
                StudentRow(
                    student_id=st.id,
                    student_number=f"{tag}{st.index}",
                    first_name="Ada",
                    last_name=st.name,
                    email=f"{tag}{st.index}@uni.edu",
                    max_credits=Decimal(st.max_credits),
                )
            )
    for s in world.sections:
        mode = WaitlistMode.OFFER if s.offer else WaitlistMode.AUTO_ENROLL
        change = SectionRulesChange(meetings=(s.meeting(),), waitlist_mode=mode)
        await container.rule_records.set_section_rules(s.id, change)
    await container.state.ensure()  # the cold start: every shard loaded from Postgres
    await shorten(world, container, lifetimes)


async def shorten(world: World, container: Container, lifetimes: Lifetimes) -> None:
    """Apply the run's deadlines; again after every reload (load_section rewrites meta)."""
    container.rules.reservation_ms = lifetimes.reservation_ms
    container.rules.sweep_after_ms = lifetimes.sweep_after_ms
    pipe = container.redis.pipeline(transaction=False)
    for s in world.sections:
        meta = container.keys.section(s.id).meta
        if await container.redis.exists(meta):
            pipe.hset(
                meta, mapping={"grace_ms": lifetimes.grace_ms, "offer_ms": lifetimes.offer_ms}
            )
    await pipe.execute()
