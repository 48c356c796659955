"""The catalog side of the registration rules: staff set course and section rules, holds,
time tickets, credit limits and completed courses; each is validated (a refusal's code, and
nothing changed), read back through GraphQL, and reaches the live state (a section's static
data through the section directory; a student's rule state mirrored into their Redis slot).
The record's reads batch (no N+1), and the snapshot gives the rebuild what staff set."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from domain.rules import HeldSection, Holding, Meeting, SectionRules, WaitlistMode
from infrastructure.postgres import rule_models  # noqa: F401  (its tables join Base.metadata)
from infrastructure.postgres.models import Base, declared
from tests.client import REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.footprint import error_code, footprint
from tests.integration.test_reads import counted_statements

COURSE_RULES = """mutation($c: UUID!, $cr: Float, $p: [UUID!]) {
  setCourseRules(courseId: $c, credits: $cr, prerequisiteCourseIds: $p) {
    id credits prerequisites { id code } } }"""
SECTION_RULES = """mutation($s: UUID!, $i: SectionRulesInput!) {
  setSectionRules(sectionId: $s, input: $i) { id
    meetings { days startTime endTime location } linkedSections { id }
    waitlistCapacity waitlistMode offerHours } }"""
PLACE_HOLD = """mutation($s: UUID!, $r: String!) { placeHold(studentId: $s, reason: $r) {
  id reason placedAt } }"""
LIFT_HOLD = """mutation($h: UUID!) { liftHold(holdId: $h) { id holds { id } } }"""
SET_TICKET = """mutation($s: UUID!, $t: UUID!, $o: DateTime!, $c: DateTime!) {
  setTimeTicket(studentId: $s, semesterId: $t, opensAt: $o, closesAt: $c) {
    opensAt closesAt semester { id } } }"""
SET_MAX = """mutation($s: UUID!, $m: Float!) { setMaxCredits(studentId: $s, maxCredits: $m) {
  id maxCredits } }"""
COMPLETED = """mutation($s: UUID!, $c: UUID!) { recordCompletedCourse(studentId: $s, courseId: $c)
  { id completedCourses { id } } }"""
STUDENT_RULES = """query($id: UUID!, $sem: UUID!) { student(id: $id) {
  holds { id reason placedAt } maxCredits credits(semesterId: $sem)
  completedCourses { id code } timeTicket(semesterId: $sem) { opensAt closesAt semester { id } }
} }"""
ATTEMPTS = """query($id: UUID!, $first: Int) { student(id: $id) {
  registrationAttempts(first: $first) { at reason section { id } } } }"""
ATTEMPTS_DEFAULT = """query($id: UUID!) { student(id: $id) {
  registrationAttempts { reason } } }"""
SECTION_READ = """query($id: UUID!) { section(id: $id) {
  meetings { days startTime endTime location } linkedSections { id }
  waitlistCapacity waitlistMode offerHours course { credits prerequisites { id } } } }"""

MWF_9 = {"days": ["MON", "WED", "FRI"], "startTime": "09:00", "endTime": "09:50"}
TR_1030 = {"days": ["TUE", "THU"], "startTime": "10:30", "endTime": "11:45", "location": "Lab 2"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def refused(api: Api, query: str, token: str | None = None, **variables: Any) -> str | None:
    """The error code of a refusal, after checking that it left Redis and Postgres alone."""
    before = await footprint(api)
    body = await api.gql(query, token if token is not None else api.token(), **variables)
    assert await footprint(api) == before, "a refusal changed something"
    return error_code(body)


async def student_hash(api: Api, student_id: Any) -> dict[str, str]:
    stored = await api.container.redis.hgetall(api.container.keys.student(student_id))
    return {str(field): str(value) for field, value in stored.items()}


async def completed_set(api: Api, student_id: Any) -> set[str]:
    return {
        str(c) for c in await api.container.redis.smembers(api.container.keys.completed(student_id))
    }


async def live_rules(api: Api, section_id: Any) -> SectionRules | None:
    """The section's rules as the hot path sees them: through the section directory (its
    in-process cache, forgotten on announcements, in front of the section's meta hash)."""
    (setup,) = await api.container.sections.setups([section_id])
    assert setup is not None
    return setup.rules


async def execute(api: Api, sql: str, *args: Any) -> None:
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


# -- the migration ----------------------------------------------------------------------------


async def test_the_migrated_schema_matches_the_models(api: Api) -> None:
    """Alembic's autogenerate finds nothing to add: the migrations create what the models
    declare (the per-semester partitions the trigger makes aside)."""
    async with api.container.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_name": declared}), Base.metadata
            )
        )
    assert diff == []


async def test_new_columns_default_for_existing_rows(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(seats=3)
    (student,) = await catalog.students(1)
    data = await api.staff(SECTION_READ, id=str(section.id))
    assert data["section"] == {
        "meetings": [],
        "linkedSections": [],
        "waitlistCapacity": None,
        "waitlistMode": "AUTO_ENROLL",
        "offerHours": 24,
        "course": {"credits": 3.0, "prerequisites": []},
    }
    read = await api.staff(STUDENT_RULES, id=str(student.id), sem=str(section.semester_id))
    assert read["student"] == {
        "holds": [],
        "maxCredits": 18.0,
        "credits": 0.0,
        "completedCourses": [],
        "timeTicket": None,
    }


# -- course rules -----------------------------------------------------------------------------


async def test_course_rules_round_trip_and_reach_every_section_of_the_course(
    api: Api, catalog: Catalog
) -> None:
    course, first, second = await catalog.course(), await catalog.course(), await catalog.course()
    fall, spring = await catalog.semester(), await catalog.semester()
    sections = [
        await catalog.section(5, fall, course),
        await catalog.section(5, spring, course),
    ]
    for s in sections:
        assert (await live_rules(api, s.id)) is not None  # cached in this process now

    data = await api.staff(
        COURSE_RULES, c=str(course.id), cr=4.5, p=[str(second.id), str(first.id)]
    )
    got = data["setCourseRules"]
    assert got["credits"] == 4.5
    assert {p["id"] for p in got["prerequisites"]} == {str(first.id), str(second.id)}
    for s in sections:
        rules = await live_rules(api, s.id)
        assert rules is not None and rules.credits == 4.5
        assert set(rules.prerequisites) == {first.id, second.id}

    # Credits alone keep the prerequisites; an empty list clears them.
    kept = (await api.staff(COURSE_RULES, c=str(course.id), cr=0))["setCourseRules"]
    assert kept["credits"] == 0.0 and len(kept["prerequisites"]) == 2
    cleared = (await api.staff(COURSE_RULES, c=str(course.id), p=[]))["setCourseRules"]
    assert cleared["credits"] == 0.0 and cleared["prerequisites"] == []
    rules = await live_rules(api, sections[1].id)
    assert rules is not None and rules.prerequisites == () and rules.credits == 0.0


async def test_a_prerequisite_chain_back_to_the_course_is_refused(
    api: Api, catalog: Catalog
) -> None:
    a, b, c = await catalog.course(), await catalog.course(), await catalog.course()
    await api.staff(COURSE_RULES, c=str(a.id), p=[str(b.id)])  # a needs b
    await api.staff(COURSE_RULES, c=str(b.id), p=[str(c.id)])  # b needs c
    assert await refused(api, COURSE_RULES, c=str(b.id), p=[str(a.id)]) == "BAD_USER_INPUT"
    assert await refused(api, COURSE_RULES, c=str(c.id), p=[str(a.id)]) == "BAD_USER_INPUT"
    # Replacing b's own prerequisites is judged without its old edge to c.
    await api.staff(COURSE_RULES, c=str(c.id), p=[])
    await api.staff(COURSE_RULES, c=str(b.id), p=[])
    await api.staff(COURSE_RULES, c=str(c.id), p=[str(b.id)])


async def test_two_changes_at_once_cannot_close_a_cycle(api: Api, catalog: Catalog) -> None:
    """Invariant: the prerequisite graph stays acyclic under concurrent staff changes."""
    for _ in range(5):
        a, b = await catalog.course(), await catalog.course()
        token = api.token()
        bodies = await asyncio.gather(
            api.gql(COURSE_RULES, token, c=str(a.id), p=[str(b.id)]),
            api.gql(COURSE_RULES, token, c=str(b.id), p=[str(a.id)]),
        )
        codes = sorted(error_code(body) if "errors" in body else "ok" for body in bodies)
        assert codes == ["BAD_USER_INPUT", "ok"], bodies


@pytest.mark.parametrize(
    ("credits", "prerequisites", "code"),
    [
        (-0.5, None, "BAD_USER_INPUT"),
        (30.5, None, "BAD_USER_INPUT"),
        (3.25, None, "BAD_USER_INPUT"),
        (None, "self", "BAD_USER_INPUT"),
        (None, "twice", "BAD_USER_INPUT"),
        (None, "unknown", "NOT_FOUND"),
        (None, "too many", "BAD_USER_INPUT"),
    ],
)
async def test_course_rules_validation(
    api: Api, catalog: Catalog, credits: float | None, prerequisites: str | None, code: str
) -> None:
    course, other = await catalog.course(), await catalog.course()
    ids = {
        None: None,
        "self": [str(course.id)],
        "twice": [str(other.id), str(other.id)],
        "unknown": [str(uuid.uuid4())],
        "too many": [str(uuid.uuid4()) for _ in range(21)],
    }[prerequisites]
    assert await refused(api, COURSE_RULES, c=str(course.id), cr=credits, p=ids) == code


async def test_course_rules_of_an_unknown_course_and_for_non_staff(
    api: Api, catalog: Catalog
) -> None:
    course = await catalog.course()
    (student,) = await catalog.students(1)
    assert await refused(api, COURSE_RULES, c=str(uuid.uuid4()), cr=3) == "NOT_FOUND"
    student_token = api.student_token(student.id)
    assert await refused(api, COURSE_RULES, student_token, c=str(course.id)) == "FORBIDDEN"
    assert await refused(api, COURSE_RULES, "", c=str(course.id)) == "UNAUTHENTICATED"


# -- section rules ----------------------------------------------------------------------------


async def test_section_rules_round_trip_and_reach_the_live_state(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    lecture, lab, other_lab = [await catalog.section(10, semester) for _ in range(3)]
    assert await live_rules(api, lecture.id) is not None  # cached before the change

    data = await api.staff(
        SECTION_RULES,
        s=str(lecture.id),
        i={
            "meetings": [TR_1030, {**MWF_9, "location": "  "}],
            "linkedSectionIds": [str(lab.id), str(other_lab.id)],
            "waitlistCapacity": 5,
            "waitlistMode": "OFFER",
            "offerHours": 48,
        },
    )
    got = data["setSectionRules"]
    assert got["meetings"] == [
        {**MWF_9, "location": None},
        TR_1030,
    ]
    assert {s["id"] for s in got["linkedSections"]} == {str(lab.id), str(other_lab.id)}
    assert (got["waitlistCapacity"], got["waitlistMode"], got["offerHours"]) == (5, "OFFER", 48)

    rules = await live_rules(api, lecture.id)
    assert rules is not None
    assert rules.meetings == (
        Meeting(("MON", "WED", "FRI"), "09:00", "09:50", None),
        Meeting(("TUE", "THU"), "10:30", "11:45", "Lab 2"),
    )
    assert set(rules.linked_sections) == {lab.id, other_lab.id}
    assert (rules.waitlist_capacity, rules.waitlist_mode, rules.offer_hours) == (
        5,
        WaitlistMode.OFFER,
        48,
    )
    assert (rules.course_id, rules.semester_id) == (lecture.course_id, semester.id)
    # Directed: the lab does not need the lecture.
    assert (await live_rules(api, lab.id)) == SectionRules(lab.course_id, semester.id)


async def test_section_rules_left_out_keep_their_value_and_null_capacity_means_unlimited(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    section, lab = await catalog.section(10, semester), await catalog.section(10, semester)
    everything = {
        "meetings": [MWF_9],
        "linkedSectionIds": [str(lab.id)],
        "waitlistCapacity": 3,
        "waitlistMode": "OFFER",
        "offerHours": 2,
    }
    await api.staff(SECTION_RULES, s=str(section.id), i=everything)
    got = (await api.staff(SECTION_RULES, s=str(section.id), i={"offerHours": 12}))[
        "setSectionRules"
    ]
    assert got["meetings"] == [{**MWF_9, "location": None}]
    assert got["linkedSections"] == [{"id": str(lab.id)}]
    assert (got["waitlistCapacity"], got["waitlistMode"], got["offerHours"]) == (3, "OFFER", 12)

    got = (
        await api.staff(
            SECTION_RULES,
            s=str(section.id),
            i={"waitlistCapacity": None, "meetings": [], "linkedSectionIds": []},
        )
    )["setSectionRules"]
    assert (got["meetings"], got["linkedSections"], got["waitlistCapacity"]) == ([], [], None)
    rules = await live_rules(api, section.id)
    assert rules is not None
    assert (rules.meetings, rules.linked_sections, rules.waitlist_capacity) == ((), (), None)
    assert rules.offer_hours == 12


async def test_concurrent_section_changes_apply_one_after_the_other(
    api: Api, catalog: Catalog
) -> None:
    """Invariant: a section ends with the meetings and links of one change, never a mix
    (and no change fails on another's rows)."""
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    labs = [await catalog.section(5, semester) for _ in range(3)]
    changes: list[dict[str, Any]] = [
        {
            "meetings": [{"days": ["MON"], "startTime": f"{8 + i:02d}:00", "endTime": "20:00"}],
            "linkedSectionIds": [str(lab.id) for lab in labs[: 1 + i % 3]],
        }
        for i in range(8)
    ]
    token = api.token()
    bodies = await asyncio.gather(
        *(api.gql(SECTION_RULES, token, s=str(section.id), i=change) for change in changes)
    )
    assert all("errors" not in body for body in bodies), bodies
    final = (await api.staff(SECTION_READ, id=str(section.id)))["section"]
    starts = [m["startTime"] for m in final["meetings"]]
    assert len(starts) == 1
    (chosen,) = [c for c in changes if c["meetings"][0]["startTime"] == starts[0]]
    assert {s["id"] for s in final["linkedSections"]} == set(chosen["linkedSectionIds"])


def _meetings(n: int) -> list[dict[str, Any]]:
    return [
        {"days": ["MON"], "startTime": f"{8 + i:02d}:00", "endTime": f"{8 + i:02d}:30"}
        for i in range(n)
    ]


SECTION_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "hour 24": ({"meetings": [{**MWF_9, "endTime": "24:00"}]}, "BAD_USER_INPUT"),
    "no leading zero": ({"meetings": [{**MWF_9, "startTime": "9:00"}]}, "BAD_USER_INPUT"),
    "ends before it starts": ({"meetings": [{**MWF_9, "endTime": "08:00"}]}, "BAD_USER_INPUT"),
    "ends as it starts": ({"meetings": [{**MWF_9, "endTime": "09:00"}]}, "BAD_USER_INPUT"),
    "no days": ({"meetings": [{**MWF_9, "days": []}]}, "BAD_USER_INPUT"),
    "a day not in the enum": ({"meetings": [{**MWF_9, "days": ["MONDAY"]}]}, "BAD_USER_INPUT"),
    "eleven meetings": ({"meetings": _meetings(11)}, "BAD_USER_INPUT"),
    "overlapping meetings": (
        {"meetings": [MWF_9, {"days": ["FRI"], "startTime": "09:30", "endTime": "10:00"}]},
        "BAD_USER_INPUT",
    ),
    "long location": ({"meetings": [{**MWF_9, "location": "x" * 101}]}, "BAD_USER_INPUT"),
    "control character": ({"meetings": [{**MWF_9, "location": "a\x00b"}]}, "BAD_USER_INPUT"),
    "negative capacity": ({"waitlistCapacity": -1}, "BAD_USER_INPUT"),
    "no offer hours": ({"offerHours": 0}, "BAD_USER_INPUT"),
    "a month of offer": ({"offerHours": 721}, "BAD_USER_INPUT"),
    "an unknown mode": ({"waitlistMode": "LOTTERY"}, "BAD_USER_INPUT"),
    "linked to itself": ({"linkedSectionIds": ["self"]}, "BAD_USER_INPUT"),
    "linked twice": ({"linkedSectionIds": ["lab", "lab"]}, "BAD_USER_INPUT"),
    "linked to an unknown section": ({"linkedSectionIds": ["unknown"]}, "NOT_FOUND"),
    "linked across semesters": ({"linkedSectionIds": ["elsewhere"]}, "BAD_USER_INPUT"),
}


@pytest.mark.parametrize("case", list(SECTION_CASES))
async def test_section_rules_validation(api: Api, catalog: Catalog, case: str) -> None:
    semester = await catalog.semester()
    section, lab = await catalog.section(5, semester), await catalog.section(5, semester)
    elsewhere = await catalog.section(5)
    names = {"self": section.id, "lab": lab.id, "unknown": uuid.uuid4(), "elsewhere": elsewhere.id}
    given, code = SECTION_CASES[case]
    if "linkedSectionIds" in given:
        given = {"linkedSectionIds": [str(names[n]) for n in given["linkedSectionIds"]]}
    assert await refused(api, SECTION_RULES, s=str(section.id), i=given) == code


async def test_section_rules_of_an_unknown_section_and_for_students(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(5)
    (student,) = await catalog.students(1)
    assert await refused(api, SECTION_RULES, s=str(uuid.uuid4()), i={}) == "NOT_FOUND"
    token = api.student_token(student.id)
    assert await refused(api, SECTION_RULES, token, s=str(section.id), i={}) == "FORBIDDEN"


# -- student rules, mirrored into Redis -------------------------------------------------------


async def test_holds_are_placed_listed_lifted_and_mirrored(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    (student,) = await catalog.students(1)
    first = (await api.staff(PLACE_HOLD, s=str(student.id), r="  Unpaid fees "))["placeHold"]
    second = (await api.staff(PLACE_HOLD, s=str(student.id), r="Advising"))["placeHold"]
    assert first["reason"] == "Unpaid fees"
    assert (await student_hash(api, student.id))["holds"] == "2"

    read = await api.staff(STUDENT_RULES, id=str(student.id), sem=str(semester.id))
    assert [h["id"] for h in read["student"]["holds"]] == [first["id"], second["id"]]

    lifted = (await api.staff(LIFT_HOLD, h=first["id"]))["liftHold"]
    assert lifted == {"id": str(student.id), "holds": [{"id": second["id"]}]}
    assert (await student_hash(api, student.id))["holds"] == "1"
    assert await refused(api, LIFT_HOLD, h=first["id"]) == "NOT_FOUND"  # already lifted
    assert await refused(api, LIFT_HOLD, h=str(uuid.uuid4())) == "NOT_FOUND"
    await api.staff(LIFT_HOLD, h=second["id"])
    assert (await student_hash(api, student.id))["holds"] == "0"


@pytest.mark.parametrize(
    ("reason", "who", "code"),
    [
        ("", "student", "BAD_USER_INPUT"),
        ("   ", "student", "BAD_USER_INPUT"),
        ("x" * 201, "student", "BAD_USER_INPUT"),
        ("ok", "unknown", "NOT_FOUND"),
        ("ok", "as the student", "FORBIDDEN"),
    ],
)
async def test_place_hold_validation(
    api: Api, catalog: Catalog, reason: str, who: str, code: str
) -> None:
    (student,) = await catalog.students(1)
    target = uuid.uuid4() if who == "unknown" else student.id
    token = api.student_token(student.id) if who == "as the student" else api.token()
    assert await refused(api, PLACE_HOLD, token, s=str(target), r=reason) == code


async def test_time_tickets_are_set_replaced_read_and_mirrored(api: Api, catalog: Catalog) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    semester = await catalog.semester(now - timedelta(days=1), now + timedelta(days=10))
    (student,) = await catalog.students(1)
    opens, closes = now + timedelta(days=2), now + timedelta(days=3)
    got = (
        await api.staff(
            SET_TICKET, s=str(student.id), t=str(semester.id), o=iso(opens), c=iso(closes)
        )
    )["setTimeTicket"]
    assert datetime.fromisoformat(got["opensAt"]) == opens
    assert datetime.fromisoformat(got["closesAt"]) == closes
    assert got["semester"] == {"id": str(semester.id)}
    field = f"tk:{semester.id}"
    ms = int(opens.timestamp() * 1000), int(closes.timestamp() * 1000)
    assert (await student_hash(api, student.id))[field] == f"{ms[0]},{ms[1]}"

    # The whole window may be used; a second ticket replaces the first.
    start, end = semester.registration_start, semester.registration_end
    await api.staff(SET_TICKET, s=str(student.id), t=str(semester.id), o=iso(start), c=iso(end))
    read = await api.staff(STUDENT_RULES, id=str(student.id), sem=str(semester.id))
    ticket = read["student"]["timeTicket"]
    assert datetime.fromisoformat(ticket["opensAt"]) == start
    assert datetime.fromisoformat(ticket["closesAt"]) == end
    ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    assert (await student_hash(api, student.id))[field] == f"{ms[0]},{ms[1]}"


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("opens before the semester's window", "BAD_USER_INPUT"),
        ("closes after the semester's window", "BAD_USER_INPUT"),
        ("closes before it opens", "BAD_USER_INPUT"),
        ("closes as it opens", "BAD_USER_INPUT"),
        ("no time zone", "BAD_USER_INPUT"),
        ("unknown student", "NOT_FOUND"),
        ("unknown semester", "NOT_FOUND"),
    ],
)
async def test_time_ticket_validation(api: Api, catalog: Catalog, case: str, code: str) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    semester = await catalog.semester(now, now + timedelta(days=10))
    (student,) = await catalog.students(1)
    opens, closes = iso(now + timedelta(days=1)), iso(now + timedelta(days=2))
    values = {"s": str(student.id), "t": str(semester.id), "o": opens, "c": closes}
    values.update(
        {
            "opens before the semester's window": {"o": iso(now - timedelta(seconds=1))},
            "closes after the semester's window": {"c": iso(now + timedelta(days=10, seconds=1))},
            "closes before it opens": {"c": iso(now + timedelta(hours=1))},
            "closes as it opens": {"c": opens},
            "no time zone": {"o": (now + timedelta(days=1)).replace(tzinfo=None).isoformat()},
            "unknown student": {"s": str(uuid.uuid4())},
            "unknown semester": {"t": str(uuid.uuid4())},
        }[case]
    )
    assert await refused(api, SET_TICKET, **values) == code


async def test_max_credits_are_set_read_and_mirrored(api: Api, catalog: Catalog) -> None:
    (student,) = await catalog.students(1)
    got = (await api.staff(SET_MAX, s=str(student.id), m=21.5))["setMaxCredits"]
    assert got == {"id": str(student.id), "maxCredits": 21.5}
    assert float((await student_hash(api, student.id))["maxcr"]) == 21.5
    await api.staff(SET_MAX, s=str(student.id), m=60)
    assert float((await student_hash(api, student.id))["maxcr"]) == 60


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (0, "BAD_USER_INPUT"),
        (-3, "BAD_USER_INPUT"),
        (60.5, "BAD_USER_INPUT"),
        (12.25, "BAD_USER_INPUT"),
    ],
)
async def test_max_credits_validation(api: Api, catalog: Catalog, value: float, code: str) -> None:
    (student,) = await catalog.students(1)
    assert await refused(api, SET_MAX, s=str(student.id), m=value) == code
    assert await refused(api, SET_MAX, s=str(uuid.uuid4()), m=12) == "NOT_FOUND"


async def test_completed_courses_are_recorded_once_and_mirrored(api: Api, catalog: Catalog) -> None:
    (student,) = await catalog.students(1)
    first, second = await catalog.course(), await catalog.course()
    for course in (first, second, first):
        got = (await api.staff(COMPLETED, s=str(student.id), c=str(course.id)))[
            "recordCompletedCourse"
        ]
    assert {c["id"] for c in got["completedCourses"]} == {str(first.id), str(second.id)}
    assert await completed_set(api, student.id) == {str(first.id), str(second.id)}
    assert await refused(api, COMPLETED, s=str(student.id), c=str(uuid.uuid4())) == "NOT_FOUND"
    assert await refused(api, COMPLETED, s=str(uuid.uuid4()), c=str(first.id)) == "NOT_FOUND"


@pytest.mark.parametrize(
    "mutation",
    ["placeHold", "liftHold", "setTimeTicket", "setMaxCredits", "recordCompletedCourse"],
)
async def test_student_rule_mutations_are_for_staff(
    api: Api, catalog: Catalog, mutation: str
) -> None:
    semester = await catalog.semester()
    (student,) = await catalog.students(1)
    course = await catalog.course()
    operations: dict[str, tuple[str, dict[str, Any]]] = {
        "placeHold": (PLACE_HOLD, {"s": str(student.id), "r": "x"}),
        "liftHold": (LIFT_HOLD, {"h": str(uuid.uuid4())}),
        "setTimeTicket": (
            SET_TICKET,
            {
                "s": str(student.id),
                "t": str(semester.id),
                "o": iso(semester.registration_start),
                "c": iso(semester.registration_end),
            },
        ),
        "setMaxCredits": (SET_MAX, {"s": str(student.id), "m": 12}),
        "recordCompletedCourse": (COMPLETED, {"s": str(student.id), "c": str(course.id)}),
    }
    query, values = operations[mutation]
    assert await refused(api, query, api.student_token(student.id), **values) == "FORBIDDEN"


async def test_staff_rules_reach_the_hot_path(api: Api, catalog: Catalog) -> None:
    """End to end: what staff set is what register checks (HOLD, then a lifted hold)."""
    section = await catalog.section(5)
    (student,) = await catalog.students(1)
    hold = (await api.staff(PLACE_HOLD, s=str(student.id), r="Library fine"))["placeHold"]
    register = {"studentId": str(student.id), "sectionIds": [str(section.id)]}
    body = await api.gql(REGISTER, api.student_token(student.id), i=register)
    (result,) = body["data"]["register"]["results"]
    assert (result["outcome"], result["reason"]) == ("REJECTED", "HOLD")
    await api.staff(LIFT_HOLD, h=hold["id"])
    body = await api.gql(REGISTER, api.student_token(student.id), i=register)
    (result,) = body["data"]["register"]["results"]
    assert (result["outcome"], result["reason"]) == ("ENROLLED", None)


# -- reads ------------------------------------------------------------------------------------


async def test_credits_count_enrolled_sections_of_the_semester_only(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    semester, other = await catalog.semester(), await catalog.semester()
    four, two, full = await catalog.course(), await catalog.course(), await catalog.course()
    await api.staff(COURSE_RULES, c=str(four.id), cr=4)
    await api.staff(COURSE_RULES, c=str(two.id), cr=2.5)
    sections = [
        await catalog.section(5, semester, four),
        await catalog.section(5, semester, two),
        await catalog.section(1, semester, full),
        await catalog.section(5, other),
    ]
    taker, student = await catalog.students(2)
    await api.gql(
        REGISTER,
        api.student_token(taker.id),
        i={"studentId": str(taker.id), "sectionIds": [str(sections[2].id)]},
    )
    body = await api.gql(
        REGISTER,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionIds": [str(s.id) for s in sections[:3]]},
    )
    outcomes = [r["outcome"] for r in body["data"]["register"]["results"]]
    assert outcomes == ["ENROLLED", "ENROLLED", "WAITLISTED"], body
    await api.gql(
        REGISTER,
        api.student_token(student.id),
        i={"studentId": str(student.id), "sectionIds": [str(sections[3].id)]},
    )
    await worker.drain()
    read = await api.staff(STUDENT_RULES, id=str(student.id), sem=str(semester.id))
    assert read["student"]["credits"] == 6.5
    read = await api.staff(STUDENT_RULES, id=str(student.id), sem=str(other.id))
    assert read["student"]["credits"] == 3.0


async def _log_attempts(api: Api, student: Any, section: Any, count: int) -> list[datetime]:
    """What the workers write for refused attempts (the hot path's side fills it too)."""
    base = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    times = [base + timedelta(seconds=i) for i in range(count)]
    for i, at in enumerate(times):
        await execute(
            api,
            "INSERT INTO registration_attempts (student_id, section_id, reason, attempted_at) "
            "VALUES ($1, $2, $3, $4)",
            student.id,
            section.id,
            f"REASON_{i}",
            at,
        )
    return times


async def test_registration_attempts_newest_first_for_the_student_and_staff(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(5)
    student, other = await catalog.students(2)
    await _log_attempts(api, student, section, 60)
    await _log_attempts(api, other, section, 1)

    data = await api.staff(ATTEMPTS, id=str(student.id), first=3)
    got = data["student"]["registrationAttempts"]
    assert [a["reason"] for a in got] == ["REASON_59", "REASON_58", "REASON_57"]
    assert got[0]["section"] == {"id": str(section.id)}
    assert datetime.fromisoformat(got[0]["at"]) == datetime(2026, 9, 1, 8, 0, 59, tzinfo=UTC)

    own = await api.gql(ATTEMPTS_DEFAULT, api.student_token(student.id), id=str(student.id))
    assert len(own["data"]["student"]["registrationAttempts"]) == 50  # the default page
    assert (await api.staff(ATTEMPTS, id=str(student.id), first=0))["student"][
        "registrationAttempts"
    ] == []
    nosy = await api.gql(ATTEMPTS, api.student_token(other.id), id=str(student.id), first=3)
    assert error_code(nosy) == "FORBIDDEN"
    for first in (-1, 501):
        assert error_code(await api.gql(ATTEMPTS, api.token(), id=str(student.id), first=first))


NESTED = """query($first: Int) { sections(first: $first) { edges { node {
  meetings { days } linkedSections { id meetings { startTime } } waitlistCapacity waitlistMode
  offerHours course { credits prerequisites { code credits } } } } } }"""
STUDENTS = """query($a: UUID!, $b: UUID!, $sem: UUID!) {
  a: student(id: $a) { ...rules } b: student(id: $b) { ...rules } }
  fragment rules on Student { holds { id } maxCredits credits(semesterId: $sem)
  completedCourses { code } timeTicket(semesterId: $sem) { semester { name } }
  registrationAttempts(first: 5) { reason section { id } } }"""


async def test_rule_fields_load_in_batches_not_one_query_per_section(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    prerequisite = await catalog.course()
    sections = [await catalog.section(5, semester) for _ in range(50)]
    for i, section in enumerate(sections):
        await api.staff(COURSE_RULES, c=str(section.course_id), p=[str(prerequisite.id)])
        partner = sections[(i + 1) % len(sections)]
        await api.staff(
            SECTION_RULES,
            s=str(section.id),
            i={"meetings": [MWF_9], "linkedSectionIds": [str(partner.id)]},
        )
    counts = {}
    for first in (5, 50):
        with counted_statements(api) as statements:
            data = await api.staff(NESTED, first=first)
        assert len(data["sections"]["edges"]) == first
        counts[first] = len(statements)
    # A page's sections, courses and rules, then the linked sections and prerequisites
    # outside the page: a fixed number of batches, fewer when the page holds the partners.
    assert counts[50] <= counts[5] <= 17, counts

    a, b = await catalog.students(2)
    for student in (a, b):
        await api.staff(PLACE_HOLD, s=str(student.id), r="x")
        await api.staff(COMPLETED, s=str(student.id), c=str(prerequisite.id))
        await _log_attempts(api, student, sections[0], 2)
    with counted_statements(api) as statements:
        data = await api.staff(STUDENTS, a=str(a.id), b=str(b.id), sem=str(semester.id))
    assert data["a"]["completedCourses"] == [{"code": prerequisite.code}]
    assert len(data["b"]["registrationAttempts"]) == 2
    assert len(statements) <= 12, statements


# -- the snapshot the rebuild reads -----------------------------------------------------------


async def test_snapshot_gives_every_students_rules_and_holdings(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    await api.staff(COURSE_RULES, c=str(course.id), cr=5)
    enrolled_in = await catalog.section(1, semester, course)
    waited_for = await catalog.section(1, semester)
    await api.staff(SECTION_RULES, s=str(waited_for.id), i={"meetings": [TR_1030]})
    first, second = await catalog.students(2)
    for student in (first, second):
        await api.gql(
            REGISTER,
            api.student_token(student.id),
            i={"studentId": str(student.id), "sectionIds": [str(waited_for.id)]},
        )
    await api.gql(
        REGISTER,
        api.student_token(second.id),
        i={"studentId": str(second.id), "sectionIds": [str(enrolled_in.id)]},
    )
    await api.staff(PLACE_HOLD, s=str(second.id), r="x")
    await api.staff(SET_MAX, s=str(second.id), m=9)
    await api.staff(COMPLETED, s=str(second.id), c=str(course.id))
    opens, closes = semester.registration_start, semester.registration_end
    await api.staff(SET_TICKET, s=str(second.id), t=str(semester.id), o=iso(opens), c=iso(closes))
    await worker.drain()

    everyone = {r.student_id: r for r in await api.container.snapshot.all_student_rules()}
    assert everyone[first.id].holds == 0 and everyone[first.id].max_credits == 18.0
    mine = everyone[second.id]
    assert (mine.holds, mine.max_credits, mine.completed_courses) == (1, 9.0, {course.id})
    assert mine.tickets == {semester.id: (opens, closes)}

    holdings = await api.container.snapshot.holdings()
    waited_rules = await live_rules(api, waited_for.id)
    enrolled_rules = await live_rules(api, enrolled_in.id)
    assert waited_rules is not None
    assert enrolled_rules is not None and enrolled_rules.credits == 5
    assert holdings[(first.id, semester.id)] == [
        HeldSection(waited_for.id, waited_rules, Holding.ENROLLED)
    ]
    assert holdings[(second.id, semester.id)] == [
        HeldSection(enrolled_in.id, enrolled_rules, Holding.ENROLLED),
        HeldSection(waited_for.id, waited_rules, Holding.WAITING),
    ]
