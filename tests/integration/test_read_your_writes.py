"""Read-your-writes (DESIGN.md invariant 8): right after an answered register, drop, swap or
claim, the same student's `me` and `student { registrations waitlist }` show it, whether
or not the workers have written it to Postgres; once they have, the answer is the same.

The deterministic interleaving is the one with no worker running: the write is answered
and certainly not persisted (each test checks Postgres lacks it). The rush runs the workers
and reads right after each answer."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from infrastructure.cli.worker import make_persister
from resolvers.loaders import read_schedules
from tests.client import REGISTER, SWAP, drop, register_input, registered
from tests.conftest import Api, Catalog, Worker
from tests.steps import Held, Hold

SCHEDULE = """registrations { id status registeredAt droppedAt section { id } }
  waitlist { position joinedAt expiresAt section { id } }"""
ME = "{ me { id " + SCHEDULE + " } }"
STUDENT = "query($id: UUID!) { student(id: $id) { id " + SCHEDULE + " } }"
ENROLLED = """query($id: UUID!) { student(id: $id) {
  registrations(status: ENROLLED) { section { id } } } }"""
CLAIM = """mutation($s: UUID!, $c: UUID!) { claimSeat(studentId: $s, sectionId: $c) {
  status } }"""
SECTION_RULES = """mutation($s: UUID!, $i: SectionRulesInput!) {
  setSectionRules(sectionId: $s, input: $i) { id } }"""


async def schedule(api: Api, student: Any) -> dict[str, Any]:
    """The student's schedule as `me` says it; `student(id:)` must say the same."""
    token = api.student_token(student.id)
    mine = await api.gql(ME, token)
    assert "errors" not in mine, mine
    theirs = await api.gql(STUDENT, token, id=str(student.id))
    assert "errors" not in theirs, theirs
    assert mine["data"]["me"] == theirs["data"]["student"]
    return dict(mine["data"]["me"])


def statuses(found: dict[str, Any]) -> dict[str, str]:
    return {r["section"]["id"]: r["status"] for r in found["registrations"]}


def positions(found: dict[str, Any]) -> dict[str, int]:
    return {w["section"]["id"]: w["position"] for w in found["waitlist"]}


@contextlib.asynccontextmanager
async def persisting(api: Api) -> AsyncIterator[Worker]:
    """A worker of the app's shards while the block runs."""
    persister = make_persister(api.container, f"ryw-{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    try:
        yield Worker(persister, api.container)
    finally:
        stop.set()
        await task


async def drained(api: Api) -> None:
    async with persisting(api) as worker:
        await worker.drain()


async def recorded(api: Api, student: Any) -> dict[str, str]:
    """What Postgres holds of the student's registrations, by section."""
    connection = await asyncpg.connect(api.container.settings.postgres)
    try:
        rows = await connection.fetch(
            "SELECT section_id, status FROM registrations WHERE student_id = $1", student.id
        )
    finally:
        await connection.close()
    return {str(r["section_id"]): str(r["status"]).upper() for r in rows}


async def offer_mode(api: Api, section: Any) -> None:
    await api.staff(SECTION_RULES, s=str(section.id), i={"waitlistMode": "OFFER", "offerHours": 1})


async def test_a_register_shows_at_once_and_the_same_once_persisted(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    open_, full = await catalog.section(5, semester), await catalog.section(1, semester)
    other, student = await catalog.students(2)
    await registered(api, other, full)
    results = await registered(api, student, open_, full)
    assert [r["outcome"] for r in results] == ["ENROLLED", "WAITLISTED"]
    assert await recorded(api, student) == {}, "no worker ran: Postgres is behind"

    live = await schedule(api, student)
    assert statuses(live) == {str(open_.id): "ENROLLED"}
    assert positions(live) == {str(full.id): 1}

    await drained(api)
    assert await recorded(api, student) == {str(open_.id): "ENROLLED"}
    assert await schedule(api, student) == live, "the live answer is what Postgres says"


async def test_a_drop_and_a_leave_show_at_once_and_the_same_once_persisted(
    api: Api, catalog: Catalog
) -> None:
    semester = await catalog.semester()
    kept, dropped = await catalog.section(5, semester), await catalog.section(5, semester)
    full = await catalog.section(1, semester)
    other, student = await catalog.students(2)
    await registered(api, other, full)
    await registered(api, student, kept, dropped, full)
    await drained(api)
    before = await schedule(api, student)

    assert (await drop(api, student, dropped))["outcome"] == "DROPPED"
    assert (await drop(api, student, full))["outcome"] == "LEFT_WAITLIST"
    assert (await recorded(api, student))[str(dropped.id)] == "ENROLLED", "Postgres is behind"

    live = await schedule(api, student)
    assert statuses(live) == {str(kept.id): "ENROLLED", str(dropped.id): "DROPPED"}
    assert positions(live) == {}
    gone = next(r for r in live["registrations"] if r["section"]["id"] == str(dropped.id))
    was = next(r for r in before["registrations"] if r["section"]["id"] == str(dropped.id))
    assert gone["droppedAt"] is not None
    assert (gone["id"], gone["registeredAt"]) == (was["id"], was["registeredAt"])
    enrolled = await api.gql(ENROLLED, api.student_token(student.id), id=str(student.id))
    assert enrolled["data"]["student"]["registrations"] == [{"section": {"id": str(kept.id)}}]

    await drained(api)
    assert await schedule(api, student) == live


async def test_a_swap_shows_at_once_and_the_same_once_persisted(api: Api, catalog: Catalog) -> None:
    semester = await catalog.semester()
    old, new = await catalog.section(5, semester), await catalog.section(5, semester)
    (student,) = await catalog.students(1)
    await registered(api, student, old)
    await drained(api)

    asked = {
        "studentId": str(student.id),
        "dropSectionId": str(old.id),
        "addSectionId": str(new.id),
    }
    body = await api.gql(SWAP, api.student_token(student.id), i=asked)
    assert body["data"]["swap"]["outcome"] == "SWAPPED", body
    assert str(new.id) not in await recorded(api, student), "Postgres is behind"

    live = await schedule(api, student)
    assert statuses(live) == {str(old.id): "DROPPED", str(new.id): "ENROLLED"}

    await drained(api)
    assert await schedule(api, student) == live


async def test_an_offer_and_its_claim_show_at_once_and_the_same_once_persisted(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(1)
    await offer_mode(api, section)
    holder, student = await catalog.students(2)
    await registered(api, holder, section)
    await registered(api, student, section)
    await drained(api)

    assert (await drop(api, holder, section))["outcome"] == "DROPPED"
    offered = await schedule(api, student)
    (place,) = offered["waitlist"]
    assert place["position"] == 1
    assert place["expiresAt"] is not None, "the offer shows with its deadline"

    claim = await api.gql(
        CLAIM, api.student_token(student.id), s=str(student.id), c=str(section.id)
    )
    assert claim["data"]["claimSeat"] == {"status": "ENROLLED"}, claim
    assert await recorded(api, student) == {}, "Postgres is behind"

    live = await schedule(api, student)
    assert statuses(live) == {str(section.id): "ENROLLED"}
    assert positions(live) == {}

    await drained(api)
    assert await schedule(api, student) == live


async def test_a_waitlist_position_is_current_after_someone_ahead_leaves(
    api: Api, catalog: Catalog
) -> None:
    section = await catalog.section(1)
    holder, first, second, me = await catalog.students(4)
    for student in (holder, first, second, me):
        await registered(api, student, section)
    await drained(api)
    assert positions(await schedule(api, me)) == {str(section.id): 3}

    assert (await drop(api, first, section))["outcome"] == "LEFT_WAITLIST"
    assert positions(await schedule(api, me)) == {str(section.id): 2}
    assert (await drop(api, holder, section))["outcome"] == "DROPPED"
    assert positions(await schedule(api, me)) == {str(section.id): 1}, "second was promoted"
    assert statuses(await schedule(api, second)) == {str(section.id): "ENROLLED"}


async def test_under_a_rush_every_read_right_after_an_answer_shows_it(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    """Invariant: with the workers persisting as fast as they can, a read issued right after
    each answer shows that answer's outcome for the student. Counted over every student."""
    semester = await catalog.semester()
    sections = await asyncio.gather(*(catalog.section(8, semester) for _ in range(20)))
    students = await catalog.students(300)
    misses: list[str] = []

    async def one(i: int, student: Any) -> None:
        section = sections[i % len(sections)]
        token = api.student_token(student.id)
        body = await api.gql(REGISTER, token, i=register_input(student.id, [section.id]))
        assert "errors" not in body, body
        (result,) = body["data"]["register"]["results"]
        # Right after the answer, by either way of asking.
        if i % 2:
            found = (await api.gql(ME, token))["data"]["me"]
        else:
            found = (await api.gql(STUDENT, token, id=str(student.id)))["data"]["student"]
        if result["outcome"] == "ENROLLED":
            shown = statuses(found).get(str(section.id)) == "ENROLLED"
        else:
            # Nobody leaves in this rush: a place in line keeps its rank.
            shown = positions(found).get(str(section.id)) == result["waitlistPosition"]
        if not shown:
            misses.append(f"{result['outcome']} not in {found}")

    await asyncio.gather(*(one(i, s) for i, s in enumerate(students)))
    print(f"\nreads right after {len(students)} registers: {len(misses)} missed")
    assert not misses, f"{len(misses)} of {len(students)} reads missed the answer: {misses[:3]}"
    await worker.drain()


async def test_with_the_rules_off_a_register_and_a_drop_show_at_once(rules_off_api: Api) -> None:
    """The rule-free hot path keeps no holdings in the student's slot; the schedule needs
    none: it reads the streams either way."""
    api, catalog = rules_off_api, Catalog(rules_off_api.container)
    semester = await catalog.semester()
    kept, dropped = await catalog.section(5, semester), await catalog.section(5, semester)
    (student,) = await catalog.students(1)
    await registered(api, student, kept, dropped)
    assert (await drop(api, student, dropped))["outcome"] == "DROPPED"
    assert await recorded(api, student) == {}, "no worker ran: Postgres is behind"

    live = await schedule(api, student)
    assert statuses(live) == {str(kept.id): "ENROLLED", str(dropped.id): "DROPPED"}

    await drained(api)
    assert await schedule(api, student) == live


async def test_an_entry_applied_and_trimmed_between_the_two_reads_is_not_lost(
    api: Api, catalog: Catalog
) -> None:
    """The schedule reads the streams and the record one after the other. Whichever comes
    first, the worker applies the student's entry and trims it from its stream before the
    second: the streams read first still have it, a record read first would not."""
    section = await catalog.section(5)
    (student,) = await catalog.students(1)
    await registered(api, student, section)
    first = Hold("of_students")
    second = Hold("registrations")
    pending = Held(api.container.pending, first)
    records = Held(api.container.records, second)
    read = asyncio.create_task(read_schedules(records, pending, [student.id]))
    arrivals = {asyncio.ensure_future(h.arrived.wait()): h for h in (first, second)}
    done, _ = await asyncio.wait(arrivals, return_when=asyncio.FIRST_COMPLETED)
    earlier = arrivals[done.pop()]
    later = second if earlier is first else first
    earlier.go.set()
    await later.reached()
    await drained(api)
    assert await recorded(api, student) == {str(section.id): "ENROLLED"}
    later.go.set()
    (found,) = await read
    assert [(r.section_id, r.status) for r in found.registrations] == [(section.id, "enrolled")]
