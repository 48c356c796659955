"""Staff change a course's credits or a section's meetings: the students who hold the section
(enrolled, in line, in flight) count the new values at once, without `rebuild-cache`
(domain/rules_admin.py _refresh, refresh.lua; docs/holdings.md "Rule changes"), and the
races with a register and a drop of the same student, driven step by step."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from domain.errors import Unavailable
from domain.rules_admin import RulesAdmin
from tests.client import drop, registered
from tests.conftest import STAFF, Api, Catalog, Worker
from tests.integration.test_rules import (
    COURSE_RULES,
    MAX_CREDITS,
    monday,
    outcomes,
    rules,
    standing,
)
from tests.steps import Held, Hold, of_student, promoter_with, registrar_with

CREDITS = """query($s: UUID!, $t: UUID!) { student(id: $s) { credits(semesterId: $t) } }"""


async def entry(api: Api, student: Any, semester: Any, section: Any) -> dict[str, Any] | None:
    raw = await api.container.redis.hget(
        api.container.keys.holdings(student.id, semester.id), str(section.id)
    )
    return None if raw is None else dict(json.loads(raw))


async def credits(api: Api, student: Any, semester: Any) -> float:
    body = await api.staff(CREDITS, s=str(student.id), t=str(semester.id))
    return float(body["student"]["credits"])


def admin_with(api: Api, **ports: Any) -> RulesAdmin:
    return dataclasses.replace(api.container.rules_admin, **ports)


async def test_new_credits_count_at_once_for_the_enrolled_and_the_waitlisted(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    """3 -> 4 credits: the enrolled student's total says 7 at once, and their next register
    is checked with 4 (3 + 4 + 3 > 9); a student in line holds the new credits too."""
    semester = await catalog.semester()
    course = await catalog.course()
    changed = await catalog.section(1, semester, course)
    other, third = await catalog.section(5, semester), await catalog.section(5, semester)
    student, waiting = await catalog.students(2)
    await api.staff(MAX_CREDITS, s=str(student.id), m=9)
    assert outcomes(await registered(api, student, changed)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, student, other)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, waiting, changed)) == [("WAITLISTED", None)]
    await worker.drain()
    assert await credits(api, student, semester) == 6.0

    await api.staff(COURSE_RULES, c=str(course.id), cr=4.0)

    assert await credits(api, student, semester) == 7.0
    assert (await entry(api, student, semester, changed) or {})["cr"] == 4.0
    held = await entry(api, waiting, semester, changed)
    assert held is not None and (held["h"], held["cr"]) == ("W", 4.0)
    assert outcomes(await registered(api, student, third)) == [("REJECTED", "CREDIT_LIMIT")]
    await api.staff(MAX_CREDITS, s=str(student.id), m=10)
    assert outcomes(await registered(api, student, third)) == [("ENROLLED", None)]


async def test_new_meetings_clash_at_once_and_the_seat_is_kept(api: Api, catalog: Catalog) -> None:
    """A section moved onto another's hour: its enrolled student keeps the seat and can no
    longer register for the other. The student in line holds the new hour too, so when a
    seat frees they are checked against it: enrolled in the other, they are skipped."""
    semester = await catalog.semester()
    moved, other = await catalog.section(1, semester), await catalog.section(5, semester)
    await rules(api, moved, meetings=[monday("09:00", "10:00")])
    await rules(api, other, meetings=[monday("11:00", "12:00")])
    student, waiting = await catalog.students(2)
    assert outcomes(await registered(api, student, moved)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, waiting, other)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, waiting, moved)) == [("WAITLISTED", None)]

    await rules(api, moved, meetings=[monday("11:30", "12:30")])

    assert outcomes(await registered(api, student, other)) == [("REJECTED", "TIME_CONFLICT")]
    assert (await entry(api, student, semester, moved) or {})["h"] == "E", "the seat is kept"
    held = await entry(api, waiting, semester, moved)
    assert held is not None and held["h"] == "W" and held["m"] == [[690, 750]]
    assert (await drop(api, student, moved))["outcome"] == "DROPPED"
    assert await standing(api, waiting, moved) == ("NOT_WAITLISTED", None), "skipped: a clash"
    assert await entry(api, waiting, semester, moved) is None


async def test_a_register_checked_against_the_old_rules_cannot_take_its_seat_after_them(
    api: Api, catalog: Catalog
) -> None:
    """Reserved with 3 credits (R), held before its seat step; staff set 4 and refresh the
    holders (it holds no seat yet, so it is not one). Its seat step is then refused (try
    again) rather than leave a holding of 3; the retry is checked with 4."""
    semester = await catalog.semester()
    course = await catalog.course()
    changed, other = await catalog.section(5, semester, course), await catalog.section(5, semester)
    student = await catalog.student()
    await api.staff(MAX_CREDITS, s=str(student.id), m=7)
    assert outcomes(await registered(api, student, other)) == [("ENROLLED", None)]

    hold = Hold("register", of_student(student.id))
    held = dataclasses.replace(
        api.container.registrar,
        seating=dataclasses.replace(
            api.container.registrar.seating,  # type: ignore[type-var]
            seats=Held(api.container.seats, hold),
        ),
    )
    registering = asyncio.create_task(held.register(STAFF, student.id, [changed.id]))
    await hold.reached()
    assert (await entry(api, student, semester, changed) or {}).get("cr") == 3.0, "reserved"
    await api.staff(COURSE_RULES, c=str(course.id), cr=4.0)
    hold.go.set()
    with pytest.raises(Unavailable):  # every section UNAVAILABLE: the client tries again
        await registering

    assert await entry(api, student, semester, changed) is None, "the reservation let go"
    assert outcomes(await registered(api, student, changed)) == [("ENROLLED", None)]
    assert (await entry(api, student, semester, changed) or {})["cr"] == 4.0


async def test_a_register_between_the_rule_write_and_the_live_state_is_refreshed_after(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    """The change is written to Postgres and held before the section's live state: a
    register then runs whole against the old rules (3 credits). The change goes on, finds
    the student among the section's holders and gives their holding 4."""
    semester = await catalog.semester()
    course = await catalog.course()
    changed, other = await catalog.section(5, semester, course), await catalog.section(5, semester)
    student = await catalog.student()
    await api.staff(MAX_CREDITS, s=str(student.id), m=6)

    hold = Hold("open_section")
    admin = admin_with(api, seats=Held(api.container.seats, hold))
    changing = asyncio.create_task(admin.set_course_rules(STAFF, course.id, 4.0, None))
    await hold.reached()
    assert outcomes(await registered(api, student, changed)) == [("ENROLLED", None)]
    assert (await entry(api, student, semester, changed) or {})["cr"] == 3.0
    hold.go.set()
    await changing

    assert (await entry(api, student, semester, changed) or {})["cr"] == 4.0
    assert outcomes(await registered(api, student, other)) == [("REJECTED", "CREDIT_LIMIT")]
    await worker.drain()
    assert await credits(api, student, semester) == 4.0


async def test_a_drop_between_the_holders_read_and_their_refresh_leaves_nothing_behind(
    api: Api, catalog: Catalog
) -> None:
    """The change has the section's holders and is held before refreshing them; the student
    drops meanwhile. The refresh finds no holding and writes none: no ghost that counts."""
    semester = await catalog.semester()
    course = await catalog.course()
    changed = await catalog.section(5, semester, course)
    student = await catalog.student()
    assert outcomes(await registered(api, student, changed)) == [("ENROLLED", None)]

    hold = Hold("refresh_holdings")
    admin = admin_with(api, rules=Held(api.container.rules, hold))
    changing = asyncio.create_task(admin.set_course_rules(STAFF, course.id, 4.0, None))
    await hold.reached()
    assert (await drop(api, student, changed))["outcome"] == "DROPPED"
    assert await entry(api, student, semester, changed) is None
    hold.go.set()
    await changing

    assert await entry(api, student, semester, changed) is None, "nothing written back"
    assert outcomes(await registered(api, student, changed)) == [("ENROLLED", None)]
    assert (await entry(api, student, semester, changed) or {})["cr"] == 4.0


async def test_a_promotion_that_read_the_old_rules_keeps_the_holdings_new_ones(
    api: Api, catalog: Catalog
) -> None:
    """A seat frees and the promoter, holding the section's old rules (3 credits), is held
    before its check of the student in line; staff set 4, which refreshes the student's W.
    The check then runs with the holding's 4, not the promoter's 3, and the seat it gives
    counts 4."""
    semester = await catalog.semester()
    course = await catalog.course()
    full, other = await catalog.section(1, semester, course), await catalog.section(5, semester)
    first, waiting = await catalog.students(2)
    await api.staff(MAX_CREDITS, s=str(waiting.id), m=7)
    assert outcomes(await registered(api, waiting, other)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, first, full)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, waiting, full)) == [("WAITLISTED", None)]

    hold = Hold("confirm_promotion", of_student(waiting.id))
    promoter = promoter_with(api.container.promoter, rules=Held(api.container.rules, hold))
    held = registrar_with(api.container.registrar, promoter=promoter)
    dropping = asyncio.create_task(held.drop(STAFF, first.id, full.id))
    await hold.reached()
    await api.staff(COURSE_RULES, c=str(course.id), cr=4.0)
    assert (await entry(api, waiting, semester, full) or {})["cr"] == 4.0, "refreshed in line"
    hold.go.set()
    await dropping

    assert await standing(api, waiting, full) == ("ENROLLED", None)
    assert (await entry(api, waiting, semester, full) or {})["cr"] == 4.0
