"""Registration rules on the hot path (contract/rules.graphql): each rule and reason, the
races that try to beat them, swaps, promotions that skip a student who would now break a
rule, offers, and a request that dies between the saga's steps."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.client import SWAP, drop, registered
from tests.conftest import Api, Catalog, Worker, forget_keys
from tests.invariants import check_postgres, check_redis
from tests.waiting import wait_until

CLAIM = """mutation($s: UUID!, $c: UUID!) { claimSeat(studentId: $s, sectionId: $c) {
  status } }"""
DECLINE = """mutation($s: UUID!, $c: UUID!) { declineOffer(studentId: $s, sectionId: $c) {
  status } }"""
SECTION_RULES = """mutation($s: UUID!, $i: SectionRulesInput!) {
  setSectionRules(sectionId: $s, input: $i) { id } }"""
COURSE_RULES = """mutation($c: UUID!, $cr: Float, $p: [UUID!]) {
  setCourseRules(courseId: $c, credits: $cr, prerequisiteCourseIds: $p) { id } }"""
HOLD = "mutation($s: UUID!, $r: String!) { placeHold(studentId: $s, reason: $r) { id } }"
LIFT = "mutation($h: UUID!) { liftHold(holdId: $h) { id } }"
TICKET = """mutation($s: UUID!, $t: UUID!, $o: DateTime!, $c: DateTime!) {
  setTimeTicket(studentId: $s, semesterId: $t, opensAt: $o, closesAt: $c) { opensAt } }"""
MAX_CREDITS = (
    "mutation($s: UUID!, $m: Float!) { setMaxCredits(studentId: $s, maxCredits: $m) { id } }"
)
COMPLETED = """mutation($s: UUID!, $c: UUID!) {
  recordCompletedCourse(studentId: $s, courseId: $c) { id } }"""
ATTEMPTS = """query($s: UUID!) { student(id: $s) {
  registrationAttempts { reason section { id } } } }"""
NOW = datetime.now(UTC)


def monday(start: str, end: str) -> dict[str, Any]:
    return {"days": ["MON"], "startTime": start, "endTime": end}


def outcomes(results: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(r["outcome"], r["reason"]) for r in results]


async def swap(api: Api, student: Any, old: Any, new: Any) -> dict[str, Any]:
    body = await api.gql(
        SWAP,
        api.student_token(student.id),
        i={"studentId": str(student.id), "dropSectionId": str(old.id), "addSectionId": str(new.id)},
    )
    assert "errors" not in body, body
    return body["data"]["swap"]


async def rules(api: Api, section: Any, **given: Any) -> None:
    await api.staff(SECTION_RULES, s=str(section.id), i=given)


async def swap_from(database_url: str, student: Any, section: Any) -> Any:
    """The enrolled section a waitlist place is recorded to replace (Postgres)."""
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetchval(
            "SELECT swap_from FROM waitlist WHERE student_id = $1 AND section_id = $2",
            student.id,
            section.id,
        )
    finally:
        await connection.close()


async def standing(api: Api, student: Any, section: Any) -> tuple[str, int | None]:
    found = await api.container.seats.standing(student.id, section.id)
    assert found is not None
    return found.status.value, found.position


async def test_a_hold_refuses_register_and_swap_but_not_drop(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    held, other = await catalog.section(5, semester), await catalog.section(5, semester)
    student = await catalog.student()
    assert outcomes(await registered(api, student, held)) == [("ENROLLED", None)]
    hold = (await api.staff(HOLD, s=str(student.id), r="library fines"))["placeHold"]["id"]
    assert outcomes(await registered(api, student, other)) == [("REJECTED", "HOLD")]
    assert await swap(api, student, held, other) == {
        "outcome": "REJECTED",
        "reason": "HOLD",
        "waitlistPosition": None,
    }
    assert (await drop(api, student, held))["outcome"] == "DROPPED"
    await api.staff(LIFT, h=hold)
    assert outcomes(await registered(api, student, other)) == [("ENROLLED", None)]


async def test_a_time_ticket_opens_and_closes_registration_for_its_student(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    early, late, free = await catalog.students(3)
    for student, opens, closes in (
        (early, NOW + timedelta(days=1), NOW + timedelta(days=2)),
        (late, NOW - timedelta(hours=3), NOW - timedelta(hours=1)),
    ):
        await api.staff(
            TICKET, s=str(student.id), t=str(semester.id), o=opens.isoformat(), c=closes.isoformat()
        )
    assert outcomes(await registered(api, early, section)) == [("REJECTED", "NOT_YET_OPEN")]
    assert outcomes(await registered(api, late, section)) == [("REJECTED", "REGISTRATION_CLOSED")]
    assert outcomes(await registered(api, free, section)) == [("ENROLLED", None)]


async def test_prerequisites_must_be_completed(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    basics, advanced = await catalog.course(), await catalog.course()
    section = await catalog.section(5, semester, advanced)
    await api.staff(COURSE_RULES, c=str(advanced.id), p=[str(basics.id)])
    student = await catalog.student()
    assert outcomes(await registered(api, student, section)) == [
        ("REJECTED", "PREREQUISITE_NOT_MET")
    ]
    await api.staff(COMPLETED, s=str(student.id), c=str(basics.id))
    assert outcomes(await registered(api, student, section)) == [("ENROLLED", None)]


async def test_a_lecture_needs_one_of_its_labs_and_leaves_with_the_last_one(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    lecture = await catalog.section(5, semester, course)
    lab_one, lab_two = [await catalog.section(5, semester) for _ in range(2)]
    await rules(api, lecture, linkedSectionIds=[str(lab_one.id), str(lab_two.id)])
    student = await catalog.student()
    assert outcomes(await registered(api, student, lecture)) == [("REJECTED", "LINK_REQUIRED")]
    assert outcomes(await registered(api, student, lecture, lab_one)) == [
        ("ENROLLED", None),
        ("ENROLLED", None),
    ]
    assert (await drop(api, student, lab_one))["outcome"] == "DROPPED"
    assert await standing(api, student, lecture) == ("NOT_WAITLISTED", None), (
        "dropping the last lab dropped the lecture in the same step"
    )
    # A lab in the same request that is itself refused does not carry the lecture.
    await rules(api, lab_two, meetings=[monday("09:00", "10:00")])
    other = await catalog.section(5, semester)
    await rules(api, other, meetings=[monday("09:30", "10:30")])
    assert outcomes(await registered(api, student, other)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, student, lab_two, lecture)) == [
        ("REJECTED", "TIME_CONFLICT"),
        ("REJECTED", "LINK_REQUIRED"),
    ]


async def test_one_section_per_course_enrolled_or_waiting(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    first, second, third = [await catalog.section(1, semester, course) for _ in range(3)]
    student, filler = await catalog.students(2)
    assert outcomes(await registered(api, filler, first)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, student, first)) == [("WAITLISTED", None)]
    assert outcomes(await registered(api, student, second)) == [("REJECTED", "DUPLICATE_COURSE")]
    other = await catalog.student()
    assert outcomes(await registered(api, other, second, third)) == [
        ("ENROLLED", None),
        ("REJECTED", "DUPLICATE_COURSE"),
    ]


async def test_time_conflicts_with_enrolled_sections_and_within_a_request(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    morning, overlap, later, also = [await catalog.section(5, semester) for _ in range(4)]
    await rules(api, morning, meetings=[monday("09:00", "10:00")])
    await rules(api, overlap, meetings=[monday("09:59", "11:00")])
    await rules(api, later, meetings=[monday("10:00", "11:00")])  # back to back is fine
    await rules(
        api, also, meetings=[{"days": ["TUE", "MON"], "startTime": "10:30", "endTime": "11:30"}]
    )
    student = await catalog.student()
    assert outcomes(await registered(api, student, morning)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, student, overlap, later, also)) == [
        ("REJECTED", "TIME_CONFLICT"),
        ("ENROLLED", None),
        ("REJECTED", "TIME_CONFLICT"),
    ]


async def test_credit_limit_default_override_and_waitlists_do_not_count(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    sections = [await catalog.section(5, semester) for _ in range(7)]  # 3 credits each
    full = await catalog.section(1, semester)
    student, filler = await catalog.students(2)
    assert outcomes(await registered(api, filler, full)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, student, full)) == [("WAITLISTED", None)]
    results = await registered(api, student, *sections)
    assert outcomes(results) == [("ENROLLED", None)] * 6 + [("REJECTED", "CREDIT_LIMIT")], (
        "the waitlisted section does not count: six 3-credit sections fill the default 18"
    )
    other = await catalog.student()
    await api.staff(MAX_CREDITS, s=str(other.id), m=4.5)
    assert outcomes(await registered(api, other, sections[0], sections[1])) == [
        ("ENROLLED", None),
        ("REJECTED", "CREDIT_LIMIT"),
    ]


async def test_a_full_waitlist_refuses_newcomers(api: Api, catalog: Catalog) -> None:
    section = await catalog.section(1)
    await rules(api, section, waitlistCapacity=1)
    one, two, three = await catalog.students(3)
    assert outcomes(await registered(api, one, section)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, two, section)) == [("WAITLISTED", None)]
    assert outcomes(await registered(api, three, section)) == [("REJECTED", "WAITLIST_FULL")]


async def test_reasons_come_in_the_contract_order(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    student = await catalog.student()
    await api.staff(
        TICKET,
        s=str(student.id),
        t=str(semester.id),
        o=(NOW - timedelta(hours=3)).isoformat(),
        c=(NOW - timedelta(hours=1)).isoformat(),
    )
    await api.staff(HOLD, s=str(student.id), r="unpaid")
    assert outcomes(await registered(api, student, section)) == [("REJECTED", "HOLD")]


async def test_ten_conflicting_registrations_at_once_leave_no_conflict(
    api: Api, catalog: Catalog
) -> None:
    """Invariant: a student's concurrent requests cannot both take the same hour or the
    last credits (the checks and reservations are one atomic step in their slot)."""
    semester = await catalog.semester()
    same_hour = [await catalog.section(5, semester) for _ in range(10)]
    for section in same_hour:
        await rules(api, section, meetings=[monday("14:00", "15:00")])
    student = await catalog.student()
    answers = await asyncio.gather(*(registered(api, student, s) for s in same_hour))
    enrolled = [a for (a,) in answers if a["outcome"] == "ENROLLED"]
    assert len(enrolled) == 1
    assert all(a["reason"] == "TIME_CONFLICT" for (a,) in answers if a["outcome"] == "REJECTED")
    spread = [await catalog.section(5, semester) for _ in range(10)]
    other = await catalog.student()
    answers = await asyncio.gather(*(registered(api, other, s) for s in spread))
    assert sum(a["outcome"] == "ENROLLED" for (a,) in answers) == 6, "18 credits / 3 each"


async def test_a_swap_with_a_seat_free_moves_the_student_in_one_step(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    old, new = (
        await catalog.section(1, semester, course),
        await catalog.section(1, semester, course),
    )
    student, waiting = await catalog.students(2)
    assert outcomes(await registered(api, student, old)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, waiting, old)) == [("WAITLISTED", None)]
    assert await swap(api, student, old, new) == {
        "outcome": "SWAPPED",
        "reason": None,
        "waitlistPosition": None,
    }
    assert await standing(api, student, new) == ("ENROLLED", None)
    assert await standing(api, student, old) == ("NOT_WAITLISTED", None)
    assert await standing(api, waiting, old) == ("ENROLLED", None), "the freed seat went on"
    await worker.drain()
    await check_postgres(api.container, settings.database_url, [old.id, new.id])


async def test_a_swap_into_a_full_section_waits_and_its_promotion_drops_the_old_one(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    old, new = (
        await catalog.section(1, semester, course),
        await catalog.section(1, semester, course),
    )
    student, holder, behind = await catalog.students(3)
    assert outcomes(await registered(api, student, old)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, holder, new)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, behind, old)) == [("WAITLISTED", None)]
    assert await swap(api, student, old, new) == {
        "outcome": "WAITLISTED_KEEPING_CURRENT",
        "reason": None,
        "waitlistPosition": 1,
    }
    assert await standing(api, student, old) == ("ENROLLED", None)
    assert (await drop(api, holder, new))["outcome"] == "DROPPED"
    assert await standing(api, student, new) == ("ENROLLED", None)
    assert await standing(api, student, old) == ("NOT_WAITLISTED", None)
    assert await standing(api, behind, old) == ("ENROLLED", None), "old seat went down its line"


async def test_200_swaps_racing_for_20_seats_leave_nobody_with_both_or_neither(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    """Invariant: a swap never holds both sections nor neither once it has answered."""
    semester = await catalog.semester()
    course = await catalog.course()
    olds = [await catalog.section(50, semester, course) for _ in range(4)]
    new = await catalog.section(20, semester, course)
    students = await catalog.students(200)
    for i, student in enumerate(students):
        assert outcomes(await registered(api, student, olds[i % 4])) == [("ENROLLED", None)]
    answers = await asyncio.gather(
        *(swap(api, s, olds[i % 4], new) for i, s in enumerate(students))
    )
    swapped = sum(a["outcome"] == "SWAPPED" for a in answers)
    waiting = sum(a["outcome"] == "WAITLISTED_KEEPING_CURRENT" for a in answers)
    assert (swapped, waiting) == (20, 180)
    for i, (student, answer) in enumerate(zip(students, answers, strict=True)):
        in_new = await standing(api, student, new)
        in_old = await standing(api, student, olds[i % 4])
        if answer["outcome"] == "SWAPPED":
            assert (in_new[0], in_old[0]) == ("ENROLLED", "NOT_WAITLISTED")
        else:
            assert (in_new[0], in_old[0]) == ("WAITING", "ENROLLED")
    await check_redis(api.container, [new.id, *(o.id for o in olds)])
    await worker.drain()
    await check_postgres(api.container, settings.database_url, [new.id, *(o.id for o in olds)])


async def _events(api: Api, section: Any, action: Any) -> list[dict[str, Any]]:
    pubsub = api.container.redis.pubsub()
    await pubsub.subscribe(api.container.keys.section_channel(section.id))
    await pubsub.get_message(timeout=1)
    await action()
    events = []
    while (message := await pubsub.get_message(timeout=0.3)) is not None:
        if message["type"] == "message":
            events.append(json.loads(message["data"]))
    await pubsub.aclose()
    return events


async def test_promotion_skips_a_student_who_would_now_break_a_rule_and_says_why(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    semester = await catalog.semester()
    section, clash = await catalog.section(1, semester), await catalog.section(5, semester)
    await rules(api, section, meetings=[monday("08:00", "09:00")])
    await rules(api, clash, meetings=[monday("08:30", "09:30")])
    holder, skipped, next_in_line = await catalog.students(3)
    await registered(api, holder, section)
    await registered(api, skipped, section)
    await registered(api, next_in_line, section)
    assert outcomes(await registered(api, skipped, clash)) == [("ENROLLED", None)], (
        "waiting for a section does not block its hours"
    )

    async def free_the_seat() -> None:
        assert (await drop(api, holder, section))["outcome"] == "DROPPED"

    events = await _events(api, section, free_the_seat)
    assert await standing(api, skipped, section) == ("NOT_WAITLISTED", None)
    assert await standing(api, next_in_line, section) == ("ENROLLED", None)
    removed = [e for e in events if e["k"] == "skip"]
    assert [(e["u"], e["why"]) for e in removed] == [(str(skipped.id), "TIME_CONFLICT")]
    await worker.drain()
    body = await api.gql(ATTEMPTS, api.student_token(skipped.id), s=str(skipped.id))
    attempts = body["data"]["student"]["registrationAttempts"]
    assert {"reason": "TIME_CONFLICT", "section": {"id": str(section.id)}} in attempts
    await check_postgres(api.container, settings.database_url, [section.id, clash.id])


async def test_offers_are_claimed_declined_or_expire(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    section = await catalog.section(1)
    await rules(api, section, waitlistMode="OFFER", offerHours=1)
    holder, first, second, third, newcomer = await catalog.students(5)
    for student in (holder, first, second, third):
        await registered(api, student, section)
    assert (await drop(api, holder, section))["outcome"] == "DROPPED"
    status, _ = await standing(api, first, section)
    assert status == "OFFERED"
    assert outcomes(await registered(api, newcomer, section)) == [("WAITLISTED", None)], (
        "an offered seat is not free for newcomers"
    )
    claim = await api.gql(CLAIM, api.student_token(first.id), s=str(first.id), c=str(section.id))
    assert claim["data"]["claimSeat"] == {"status": "ENROLLED"}
    assert (await drop(api, first, section))["outcome"] == "DROPPED"
    assert (await standing(api, second, section))[0] == "OFFERED"
    declined = await api.gql(
        DECLINE, api.student_token(second.id), s=str(second.id), c=str(section.id)
    )
    assert declined["data"]["declineOffer"] == {"status": "REMOVED"}
    assert (await standing(api, third, section))[0] == "OFFERED"

    # Let the offer lapse: its holder in Redis says when; the workers' sweep does the rest.
    k = api.container.keys.section(section.id)
    past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp() * 1000)
    await api.container.redis.hset(k.held, str(third.id), f"o:{past}")
    await api.container.redis.zadd(k.held_index, {f"{section.id}|{third.id}": past})
    for _ in range(50):
        if (await standing(api, third, section))[0] == "NOT_WAITLISTED":
            break
        await asyncio.sleep(0.1)
    assert (await standing(api, third, section))[0] == "NOT_WAITLISTED", "expired within seconds"
    assert (await standing(api, newcomer, section))[0] == "OFFERED", "and passed on"
    await worker.drain()
    await check_redis(api.container, [section.id])
    await check_postgres(api.container, settings.database_url, [section.id])


async def test_a_request_that_dies_between_the_steps_leaks_no_reservation(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    """Invariant: credits reserved by a request that never settled come back once its
    deadline passes (the sweeper settles against the section's real state)."""
    rules_store = api.container.rules
    rules_store.reservation_ms, rules_store.sweep_after_ms = 200, 400
    semester = await catalog.semester()
    sections = [await catalog.section(5, semester) for _ in range(3)]
    student = await catalog.student()
    await api.staff(MAX_CREDITS, s=str(student.id), m=6)
    (setup,) = await api.container.sections.setups([sections[0].id])
    assert setup is not None
    # Step (1) of a register, then the request dies: no section script, no settle.
    await rules_store.reserve(student.id, [setup], [setup.section_id], "died")
    assert outcomes(await registered(api, student, sections[1], sections[2])) == [
        ("ENROLLED", None),
        ("REJECTED", "CREDIT_LIMIT"),
    ]
    holdings = api.container.keys.holdings(student.id, semester.id)

    async def swept() -> bool:
        return str(sections[0].id) not in await api.container.redis.hkeys(holdings)

    await wait_until(swept, 6, "the dead request's reservation swept")
    assert outcomes(await registered(api, student, sections[2])) == [("ENROLLED", None)]


async def test_refusals_are_logged_for_the_student_and_staff(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    one, two = (
        await catalog.section(5, semester, course),
        await catalog.section(5, semester, course),
    )
    student = await catalog.student()
    await registered(api, student, one)
    await registered(api, student, two)
    await worker.drain()
    for token in (api.student_token(student.id), api.token()):
        body = await api.gql(ATTEMPTS, token, s=str(student.id))
        assert body["data"]["student"]["registrationAttempts"] == [
            {"reason": "DUPLICATE_COURSE", "section": {"id": str(two.id)}}
        ]
    connection = await asyncpg.connect(settings.database_url)
    try:
        rows = await connection.fetch(
            "SELECT reason, request_id FROM registration_attempts WHERE student_id = $1",
            student.id,
        )
    finally:
        await connection.close()
    assert [r["reason"] for r in rows] == ["DUPLICATE_COURSE"] and rows[0]["request_id"]
    assert uuid.UUID(str(student.id))


async def test_a_pending_swap_survives_a_rebuild_of_the_live_state(
    api: Api, catalog: Catalog, worker: Worker, settings: Any
) -> None:
    semester = await catalog.semester()
    course = await catalog.course()
    old, new = (
        await catalog.section(1, semester, course),
        await catalog.section(1, semester, course),
    )
    student, holder = await catalog.students(2)
    await registered(api, student, old)
    await registered(api, holder, new)
    assert (await swap(api, student, old, new))["outcome"] == "WAITLISTED_KEEPING_CURRENT"
    await worker.drain()
    assert await swap_from(settings.database_url, student, new) == old.id
    await forget_keys(api.container)
    await api.container.state.ensure()
    assert (await drop(api, holder, new))["outcome"] == "DROPPED"
    assert await standing(api, student, new) == ("ENROLLED", None)
    assert await standing(api, student, old) == ("NOT_WAITLISTED", None)
