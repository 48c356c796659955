"""The races of the review of 2026-12-05 (issue 12), each driven step by step: a request is
held between two steps of its saga at a port (tests/steps.py), the other side of the race
runs, then the held step goes on (or the request dies there). Each test is named after its
finding and fails on 6e12c64, where these interleavings broke the invariants of DESIGN.md.
Findings 6 (fenced workers) and 7 (c) (lost replies) have files of their own:
test_fencing.py and test_lost_replies.py; finding 10 end to end is tests/faults/test_chaos.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.errors import Unavailable
from domain.model import DropOutcome, RegisterOutcome
from domain.registration import operation
from infrastructure.cli.worker import make_persister
from infrastructure.redis import idempotency
from infrastructure.redis.keys import shard_of
from infrastructure.settings import Settings
from tests.client import REGISTER, drop, registered
from tests.conftest import STAFF, Api, Catalog, Worker
from tests.integration.test_cli import acoursereg
from tests.integration.test_rules import (
    COMPLETED,
    COURSE_RULES,
    MAX_CREDITS,
    monday,
    outcomes,
    rules,
    standing,
    swap_from,
)
from tests.steps import Held, Hold, of_student, promoter_with, registrar_with
from tests.stored import read_stream


async def holding(api: Api, student: Any, semester: Any, section: Any) -> str | None:
    raw = await api.container.redis.hget(
        api.container.keys.holdings(student.id, semester.id), str(section.id)
    )
    return None if raw is None else str(json.loads(raw)["h"])


def short_deadlines(api: Api) -> None:
    """Reservations live 200 ms and are swept after 400 ms, so a test can wait them out."""
    api.container.rules.reservation_ms, api.container.rules.sweep_after_ms = 200, 400


async def swept(api: Api, done: Any, seconds: float = 5.0) -> None:
    """Run the sweeper over every shard until `done()` holds."""
    shards = range(api.container.keys.shards)
    for _ in range(int(seconds / 0.1)):
        await api.container.promoter.sweep(shards)
        if await done():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the sweeper never settled it")


async def persist_all(api: Api) -> None:
    """Run a worker until the streams are applied, then stop it: what is answered after
    stays unpersisted."""
    persister = make_persister(api.container, f"once-{uuid.uuid4().hex[:6]}")
    stop = asyncio.Event()
    task = asyncio.create_task(persister.run(stop))
    try:
        await Worker(persister, api.container).drain()
    finally:
        stop.set()
        await task


@contextlib.asynccontextmanager
async def rebuild_lock(api: Api) -> AsyncIterator[None]:
    """Hold the rebuild lock: the app's state watcher cannot rebuild meanwhile."""
    redis, lock, token = api.container.redis, api.container.keys.rebuild_lock, uuid.uuid4().hex
    while not await redis.set(lock, token, nx=True, px=60_000):
        await asyncio.sleep(0.05)
    try:
        yield
    finally:
        await api.container.scripts.release(keys=[lock], args=[token])


async def delete_matching(api: Api, pattern: str) -> int:
    deleted = 0
    async for key in api.container.redis.scan_iter(match=pattern, count=10_000):
        deleted += await api.container.redis.delete(key)
    return deleted


async def test_f1_a_late_settle_never_turns_a_promotion_back_into_waiting(
    api: Api, catalog: Catalog
) -> None:
    """X joins the line (register.lua WAITLISTED) and, before X's own settle, A drops: the
    promoter gives X the seat (E). X's settle then must not write W over it: X is enrolled,
    and the seat's credits and hour count, so a clash and an overload are refused."""
    semester = await catalog.semester()
    full, clash, other = [await catalog.section(n, semester) for n in (1, 5, 5)]
    await rules(api, full, meetings=[monday("09:00", "10:00")])
    await rules(api, clash, meetings=[monday("09:30", "10:30")])
    a, x = await catalog.students(2)
    await api.staff(MAX_CREDITS, s=str(x.id), m=4)
    assert outcomes(await registered(api, a, full)) == [("ENROLLED", None)]

    hold = Hold("settle", of_student(x.id))
    held = registrar_with(api.container.registrar, rules=Held(api.container.rules, hold))
    joining = asyncio.create_task(held.register(STAFF, x.id, [full.id]))
    await hold.reached()
    assert await standing(api, x, full) == ("WAITING", 1)
    assert (await drop(api, a, full))["outcome"] == "DROPPED"
    assert await standing(api, x, full) == ("ENROLLED", None), "promoted before its settle"
    hold.go.set()
    answer = await joining

    assert [r.outcome for r in answer.results] == [RegisterOutcome.WAITLISTED]
    assert await holding(api, x, semester, full) == "E", "the holding never went back to W"
    assert outcomes(await registered(api, x, clash)) == [("REJECTED", "TIME_CONFLICT")]
    assert outcomes(await registered(api, x, other)) == [("REJECTED", "CREDIT_LIMIT")]


async def test_f2_a_rebuild_gives_a_seat_held_for_the_line_back_to_the_line(
    api: Api, catalog: Catalog, worker: Worker
) -> None:
    """A drops; drop.lua holds the seat for X (p) and the promoter dies before its check.
    A rebuild from Postgres (which never knew of the hold) must not count the seat free for
    a newcomer Y: it goes back to the line, and the sweeper gives it to X."""
    section = await catalog.section(1)
    a, x, y = await catalog.students(3)
    assert outcomes(await registered(api, a, section)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, x, section)) == [("WAITLISTED", None)]

    hold = Hold("confirm_promotion", of_student(x.id))
    promoter = promoter_with(api.container.promoter, rules=Held(api.container.rules, hold))
    held = registrar_with(api.container.registrar, promoter=promoter)
    dropping = asyncio.create_task(held.drop(STAFF, a.id, section.id))
    await hold.reached()  # the seat is held for X; the hand-over never goes on

    async def drained(*_: Any) -> bool:
        await worker.drain()
        return True

    assert await api.container.state.rebuild(drained) is not None
    assert outcomes(await registered(api, y, section)) == [("WAITLISTED", None)], (
        "the newcomer does not take the seat the head of the line waited for"
    )

    async def x_enrolled() -> bool:
        return (await standing(api, x, section))[0] == "ENROLLED"

    await swept(api, x_enrolled)
    assert await standing(api, y, section) == ("WAITING", 1)
    dropping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dropping


async def test_f3_rules_are_never_checked_against_a_lost_student_slot(
    api: Api, catalog: Catalog
) -> None:
    """Redis lost a student's slot (their completed courses among it) and the rebuild has not
    reloaded it yet: a register answers "try again" (UNAVAILABLE), never a final
    PREREQUISITE_NOT_MET kept under the idempotency key; after the reload it enrolls."""
    semester = await catalog.semester()
    basics, advanced = await catalog.course(), await catalog.course()
    section = await catalog.section(5, semester, advanced)
    await api.staff(COURSE_RULES, c=str(advanced.id), p=[str(basics.id)])
    student = await catalog.student()
    await api.staff(COMPLETED, s=str(student.id), c=str(basics.id))
    i = {"studentId": str(student.id), "sectionIds": [str(section.id)], "idempotencyKey": "k-3"}
    token = api.student_token(student.id)

    async with rebuild_lock(api):
        slot = f"{api.container.keys.prefix}stu:{{stu-{student.id}}}*"
        assert await delete_matching(api, slot) > 0
        await api.container.redis.delete(api.container.keys.students_loaded)
        during = await api.gql(REGISTER, token, i=i)
        api.container.students.forget_all()  # a process that never saw this student
        cold = await api.gql(REGISTER, token, i=i)

    for body in (during, cold):
        assert body.get("data") is None, body
        assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE", body
    await api.container.state.ensure()
    after = await api.gql(REGISTER, token, i=i)
    assert after["data"]["register"]["results"][0]["outcome"] == "ENROLLED", after


async def test_f4_a_drop_that_fails_half_way_keeps_counting_its_seat(
    api: Api, catalog: Catalog
) -> None:
    """The drop's seat step fails (Redis went away): the student still holds the seat, so
    its hour and credits still count; the sweeper then finishes the drop that began."""
    short_deadlines(api)
    semester = await catalog.semester()
    first, clash = await catalog.section(5, semester), await catalog.section(5, semester)
    await rules(api, first, meetings=[monday("09:00", "10:00")])
    await rules(api, clash, meetings=[monday("09:30", "10:30")])
    student = await catalog.student()
    assert outcomes(await registered(api, student, first)) == [("ENROLLED", None)]

    hold = Hold("drop", of_student(student.id), fail=Unavailable("Redis went away"))
    hold.go.set()
    seats = Held(api.container.seats, hold)
    promoter = promoter_with(api.container.promoter, seats=seats)
    held = registrar_with(api.container.registrar, seats=seats, promoter=promoter)
    with pytest.raises(Unavailable):
        await held.drop(STAFF, student.id, first.id)

    assert await standing(api, student, first) == ("ENROLLED", None)
    assert outcomes(await registered(api, student, clash)) == [("REJECTED", "TIME_CONFLICT")], (
        "a seat still held counts"
    )

    async def dropped() -> bool:
        return (await standing(api, student, first))[0] == "NOT_WAITLISTED"

    await swept(api, dropped)
    assert await holding(api, student, semester, first) is None
    assert outcomes(await registered(api, student, clash)) == [("ENROLLED", None)]


async def test_f5_a_swap_that_dies_after_its_new_seat_ends_with_exactly_one(
    api: Api, catalog: Catalog
) -> None:
    """A swap takes the seat in `new` and its request dies before settling: the sweeper
    must settle `new` as ENROLLED and drop `old` (its seat freed), never leave both."""
    short_deadlines(api)
    semester = await catalog.semester()
    course = await catalog.course()
    old, new = (
        await catalog.section(1, semester, course),
        await catalog.section(1, semester, course),
    )
    student = await catalog.student()
    assert outcomes(await registered(api, student, old)) == [("ENROLLED", None)]

    hold = Hold("settle", of_student(student.id))
    held = registrar_with(api.container.registrar, rules=Held(api.container.rules, hold))
    swapping = asyncio.create_task(held.swap(STAFF, student.id, old.id, new.id))
    await hold.reached()
    swapping.cancel()  # the request dies with the new seat taken
    with contextlib.suppress(asyncio.CancelledError):
        await swapping
    assert await standing(api, student, new) == ("ENROLLED", None)

    async def old_dropped() -> bool:
        return (await standing(api, student, old))[0] == "NOT_WAITLISTED"

    await swept(api, old_dropped)
    assert await standing(api, student, new) == ("ENROLLED", None)
    assert await holding(api, student, semester, new) == "E"
    assert await holding(api, student, semester, old) is None
    (state,) = await api.container.seats.states([old.id])
    assert state is not None and state.available_seats == 1


async def test_f7_a_step_failing_after_the_seats_keeps_the_first_answer(
    api: Api, catalog: Catalog
) -> None:
    """The drop's seat step ran (DROPPED) and handing the freed seat on failed: the answer
    is DROPPED and stays so for a retry with the key (the seat held for the head of the
    line is the sweeper's); on 6e12c64 the key was abandoned and the retry said
    NOT_REGISTERED."""
    section = await catalog.section(1)
    a, x = await catalog.students(2)
    assert outcomes(await registered(api, a, section)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, x, section)) == [("WAITLISTED", None)]
    hold = Hold("confirm_promotion", of_student(x.id), fail=Unavailable("Redis blinked"))
    hold.go.set()
    promoter = promoter_with(api.container.promoter, rules=Held(api.container.rules, hold))
    held = registrar_with(api.container.registrar, promoter=promoter)

    first = await held.drop(STAFF, a.id, section.id, idempotency_key="drop-7")
    again = await held.drop(STAFF, a.id, section.id, idempotency_key="drop-7")
    assert first.outcome is DropOutcome.DROPPED
    assert again == first
    held_for = await api.container.redis.hkeys(api.container.keys.section(section.id).held)
    assert held_for == [str(x.id)], "the seat waits for the head of the line, not a newcomer"


async def test_f7_an_answer_with_unavailable_in_it_is_never_kept(
    api: Api, catalog: Catalog
) -> None:
    """One of two sections answers UNAVAILABLE (its shard is being rebuilt): the answer is
    not kept under the key, so the retry does the work that was not done."""
    semester = await catalog.semester()
    shards = api.container.keys.shards
    one = await catalog.section(5, semester)
    two = await catalog.section(5, semester)
    while shard_of(two.id, shards) == shard_of(one.id, shards):
        two = await catalog.section(5, semester)
    student = await catalog.student()
    marker = api.container.keys.shard_ready(shard_of(two.id, shards))
    async with rebuild_lock(api):
        kept = await api.container.redis.get(marker)
        assert kept is not None
        await api.container.redis.delete(marker)
        first = await api.container.registrar.register(
            STAFF, student.id, [one.id, two.id], "both-7"
        )
        await api.container.redis.set(marker, kept)
    assert [(r.outcome, r.reason) for r in first.results] == [
        (RegisterOutcome.ENROLLED, None),
        (RegisterOutcome.REJECTED, "UNAVAILABLE"),
    ]
    again = await api.container.registrar.register(STAFF, student.id, [one.id, two.id], "both-7")
    assert [r.outcome for r in again.results][1] is RegisterOutcome.ENROLLED
    assert await standing(api, student, two) == ("ENROLLED", None)


async def test_f7_a_duplicate_of_a_request_slower_than_its_lease_waits_for_its_answer(
    api: Api, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request with a key runs longer than its lease on the key: the key is kept
    (renewed) while it works, so a duplicate waits for that answer instead of running the
    work again and answering ALREADY_ENROLLED."""
    monkeypatch.setattr(idempotency, "LEASE_MS", 300)
    store = api.container.registrar.answers
    if hasattr(store, "lease_ms"):
        monkeypatch.setattr(store, "lease_ms", 300)
    section = await catalog.section(5)
    student = await catalog.student()
    hold = Hold("settle", of_student(student.id))
    held = registrar_with(api.container.registrar, rules=Held(api.container.rules, hold))
    slow = asyncio.create_task(held.register(STAFF, student.id, [section.id], "slow-7"))
    await hold.reached()
    await asyncio.sleep(1.0)  # three leases
    duplicate = asyncio.create_task(held.register(STAFF, student.id, [section.id], "slow-7"))
    await asyncio.sleep(0.5)
    hold.go.set()
    first, second = await slow, await duplicate
    assert [r.outcome for r in first.results] == [RegisterOutcome.ENROLLED]
    assert second == first
    entries = await read_stream(api.container.redis, api.container.keys.section(section.id).stream)
    kinds = [f["k"] for _, f in entries if f.get("u") == str(student.id)]
    assert kinds == ["enroll"], "the work happened once"


async def test_f8_a_partial_rebuild_keeps_the_live_holdings_of_students_it_did_not_lose(
    api: Api, catalog: Catalog
) -> None:
    """One shard's keys are lost (a cluster node restarted empty) while another shard holds
    a fresh, unpersisted enrollment: the rebuild reloads the lost shard only and leaves the
    holdings of students whose slot survived as they are, so the enrollment still counts."""
    semester = await catalog.semester()
    shards = api.container.keys.shards
    kept, lost = await catalog.section(5, semester), await catalog.section(5, semester)
    while shard_of(lost.id, shards) == shard_of(kept.id, shards):
        lost = await catalog.section(5, semester)
    clash, earlier = await catalog.section(5, semester), await catalog.section(5, semester)
    await rules(api, kept, meetings=[monday("09:00", "10:00")])
    await rules(api, clash, meetings=[monday("09:30", "10:30")])
    student = await catalog.student()
    assert outcomes(await registered(api, student, earlier)) == [("ENROLLED", None)]
    await persist_all(api)  # Postgres knows the student holds `earlier` in this semester
    assert outcomes(await registered(api, student, kept)) == [("ENROLLED", None)]  # not yet

    async with rebuild_lock(api):
        tag = f"{{shard-{shard_of(lost.id, shards)}}}"
        assert await delete_matching(api, f"{api.container.keys.prefix}*{tag}*") > 0
    await api.container.state.ensure()

    assert not await api.container.state.missing_shards()
    assert await holding(api, student, semester, kept) == "E"
    assert outcomes(await registered(api, student, clash)) == [("REJECTED", "TIME_CONFLICT")]


async def test_f9_reconcile_repair_never_reloads_a_section_under_unpersisted_changes(
    api: Api, catalog: Catalog, settings: Settings
) -> None:
    """A section drifts while an enrollment in it waits in its stream (no worker runs):
    `reconcile --repair` must not reload it from a Postgres that lacks the enrollment (the
    seat would be freed while the stream still persists it later)."""
    section = await catalog.section(3)
    student = await catalog.student()
    assert outcomes(await registered(api, student, section)) == [("ENROLLED", None)]
    await api.container.redis.hset(api.container.keys.section(section.id).meta, "total", 4)

    repaired = await acoursereg(settings, "reconcile", "--force", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert await standing(api, student, section) == ("ENROLLED", None)
    (state,) = await api.container.seats.states([section.id])
    assert state is not None and (state.total_seats, state.available_seats) == (3, 2)


async def test_f9_a_swap_left_waiting_keeps_its_intent_when_its_request_dies(
    api: Api, catalog: Catalog, worker: Worker, settings: Settings
) -> None:
    """A swap into a full section joins its line and the request dies before settling: the
    swap's intent is persisted with the place (the join carries it), so a rebuild or a
    promotion still drops the old section."""
    semester = await catalog.semester()
    course = await catalog.course()
    old, new = (
        await catalog.section(1, semester, course),
        await catalog.section(1, semester, course),
    )
    student, other = await catalog.students(2)
    assert outcomes(await registered(api, student, old)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, other, new)) == [("ENROLLED", None)]
    hold = Hold("settle", of_student(student.id))
    held = registrar_with(api.container.registrar, rules=Held(api.container.rules, hold))
    swapping = asyncio.create_task(held.swap(STAFF, student.id, old.id, new.id))
    await hold.reached()
    swapping.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await swapping
    await worker.drain()
    assert await swap_from(settings.postgres, student, new) == old.id


async def test_f9_a_request_stalled_past_its_sweep_cannot_take_the_seat_it_was_released(
    api: Api, catalog: Catalog
) -> None:
    """A register reserves credits, then stalls past its deadline; the sweeper releases the
    reservation and another request uses the credits. The stalled request's seat step must
    then refuse (its reservation is gone), not take a seat that counts nothing."""
    short_deadlines(api)
    semester = await catalog.semester()
    first, second = await catalog.section(5, semester), await catalog.section(5, semester)
    student = await catalog.student()
    await api.staff(MAX_CREDITS, s=str(student.id), m=3)
    hold = Hold("register", of_student(student.id))
    held = registrar_with(api.container.registrar, seats=Held(api.container.seats, hold))
    stalled = asyncio.create_task(held.register(STAFF, student.id, [first.id]))
    await hold.reached()

    async def released() -> bool:
        return await holding(api, student, semester, first) is None

    await asyncio.sleep(0.5)
    await swept(api, released)
    assert outcomes(await registered(api, student, second)) == [("ENROLLED", None)]
    hold.go.set()
    with contextlib.suppress(Unavailable):
        answer = await stalled
        assert [r.reason for r in answer.results] == ["UNAVAILABLE"], answer
    assert await standing(api, student, first) == ("NOT_WAITLISTED", None)
    assert await holding(api, student, semester, second) == "E"


async def test_f8_a_lost_shard_takes_no_saga_in_flight_out_of_the_sweepers_sight(
    api: Api, catalog: Catalog
) -> None:
    """The sweeper's index of sagas in flight lives in the shard of the student's id. That
    shard is lost while a request of the student, reserved in a surviving slot, has died:
    the rebuild indexes the reservation again, so its credits come back."""
    short_deadlines(api)
    shards = api.container.keys.shards
    semester = await catalog.semester()
    student = await catalog.student()
    index_shard = shard_of(student.id, shards)
    section = await catalog.section(5, semester)
    while shard_of(section.id, shards) == index_shard:
        section = await catalog.section(5, semester)
    await api.staff(MAX_CREDITS, s=str(student.id), m=3)

    hold = Hold("register", of_student(student.id))
    held = registrar_with(api.container.registrar, seats=Held(api.container.seats, hold))
    dying = asyncio.create_task(held.register(STAFF, student.id, [section.id]))
    await hold.reached()
    dying.cancel()  # reserved (R), then the request died
    with contextlib.suppress(asyncio.CancelledError):
        await dying
    assert await holding(api, student, semester, section) == "R"

    async with rebuild_lock(api):
        tag = f"{{shard-{index_shard}}}"
        assert await delete_matching(api, f"{api.container.keys.prefix}*{tag}*") > 0
    await api.container.state.ensure()
    await asyncio.sleep(0.5)

    async def released() -> bool:
        return await holding(api, student, semester, section) is None

    await swept(api, released)
    assert outcomes(await registered(api, student, section)) == [("ENROLLED", None)]


# Found by the explorer (tests/explorer, make explore), each replayed there by its seed
# (settings.FOUND) and driven here step by step.


async def test_x_a_register_of_a_section_held_takes_nothing_the_rules_did_not_check(
    api: Api, catalog: Catalog
) -> None:
    """Seed 401327052: X's second register of S finds S held (HELD:E: no rule checked, no
    reservation made); before its section step, X's drop of S completes. The section step
    then must not take a fresh seat the rules never saw: "try again", and X holds nothing."""
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    x = await catalog.student()
    assert outcomes(await registered(api, x, section)) == [("ENROLLED", None)]

    hold = Hold("register", of_student(x.id))
    held = registrar_with(api.container.registrar, seats=Held(api.container.seats, hold))
    again = asyncio.create_task(held.register(STAFF, x.id, [section.id]))
    await hold.reached()  # reserve.lua answered HELD:E
    assert (await drop(api, x, section))["outcome"] == "DROPPED"
    hold.go.set()
    with pytest.raises(Unavailable):
        await again

    assert await standing(api, x, section) == ("NOT_WAITLISTED", None)
    assert await holding(api, x, semester, section) is None
    assert outcomes(await registered(api, x, section)) == [("ENROLLED", None)]
    assert await holding(api, x, semester, section) == "E"


async def test_x_a_claim_that_breaks_a_rule_with_no_seat_offered_keeps_the_place(
    api: Api, catalog: Catalog
) -> None:
    """Seed 122172537: X waits for full S0, then enrolls in S1 at the same hour (a place in
    line counts no time). X's claimSeat of S0, with nothing offered, finds the clash: the
    section keeps X in line (nothing to skip), so the holding W stays with the place."""
    semester = await catalog.semester()
    full, clash = await catalog.section(1, semester), await catalog.section(5, semester)
    await rules(api, full, meetings=[monday("09:00", "10:00")])
    await rules(api, clash, meetings=[monday("09:30", "10:30")])
    a, x = await catalog.students(2)
    assert outcomes(await registered(api, a, full)) == [("ENROLLED", None)]
    assert outcomes(await registered(api, x, full)) == [("WAITLISTED", None)]
    assert outcomes(await registered(api, x, clash)) == [("ENROLLED", None)]

    status = await api.container.registrar.claim_seat(STAFF, x.id, full.id)

    assert status == "WAITING"
    assert await standing(api, x, full) == ("WAITING", 1)
    assert await holding(api, x, semester, full) == "W", "the place keeps its holding"


async def test_x_a_claim_never_takes_over_its_students_register_under_way(
    api: Api, catalog: Catalog
) -> None:
    """Seed 192418350: X's register of full S joined the line and has not settled (R). A
    claimSeat of S by X meanwhile answers "try again" and leaves the R to its register, which
    then settles it to W (a hand-over may take an R over; the student's own claim may not)."""
    semester = await catalog.semester()
    section = await catalog.section(1, semester)
    a, x = await catalog.students(2)
    assert outcomes(await registered(api, a, section)) == [("ENROLLED", None)]

    hold = Hold("settle", of_student(x.id))
    held = registrar_with(api.container.registrar, rules=Held(api.container.rules, hold))
    joining = asyncio.create_task(held.register(STAFF, x.id, [section.id]))
    await hold.reached()
    assert await holding(api, x, semester, section) == "R"
    with pytest.raises(Unavailable):
        await api.container.registrar.claim_seat(STAFF, x.id, section.id)
    assert await holding(api, x, semester, section) == "R"
    hold.go.set()
    answer = await joining

    assert [r.outcome for r in answer.results] == [RegisterOutcome.WAITLISTED]
    assert await holding(api, x, semester, section) == "W"
    assert await standing(api, x, section) == ("WAITING", 1)


async def test_x_a_swap_that_meets_a_drop_of_its_old_section_says_swapped_once_it_is_gone(
    api: Api, catalog: Catalog
) -> None:
    """Seed 303065140: X swaps S1 for S0; after the swap's rule check, X's drop of S1 marks
    it LEAVING and stalls before its seat step. The swap takes S0, finds S1 LEAVING under the
    drop's operation, and drops S1's seat itself (under that operation: once) before it
    answers SWAPPED; the drop then answers DROPPED from the same step."""
    semester = await catalog.semester()
    old, new = await catalog.section(5, semester), await catalog.section(5, semester)
    x = await catalog.student()
    assert outcomes(await registered(api, x, old)) == [("ENROLLED", None)]

    swap_hold = Hold("register", of_student(x.id))
    swapper = registrar_with(api.container.registrar, seats=Held(api.container.seats, swap_hold))
    swapping = asyncio.create_task(swapper.swap(STAFF, x.id, old.id, new.id))
    await swap_hold.reached()  # the rule check passed, S1 still ENROLLED
    drop_hold = Hold("drop", of_student(x.id))
    promoter = promoter_with(api.container.promoter, seats=Held(api.container.seats, drop_hold))
    dropper = registrar_with(api.container.registrar, promoter=promoter)
    dropping = asyncio.create_task(dropper.drop(STAFF, x.id, old.id))
    await drop_hold.reached()  # S1 LEAVING under the drop's operation
    assert await holding(api, x, semester, old) == "D"
    swap_hold.go.set()
    answer = await swapping

    assert answer.outcome.value == "SWAPPED"
    assert await standing(api, x, old) == ("NOT_WAITLISTED", None), "S1 gone before SWAPPED"
    assert await standing(api, x, new) == ("ENROLLED", None)
    drop_hold.go.set()
    assert (await dropping).outcome is DropOutcome.DROPPED
    assert await holding(api, x, semester, old) is None
    assert await holding(api, x, semester, new) == "E"


async def test_x_a_drop_that_meets_another_drop_never_drops_the_seat_taken_after_it(
    api: Api, catalog: Catalog
) -> None:
    """Seed 222172943: two drops of S by X. A marks S LEAVING; B finds it LEAVING and stalls
    before its seat step; A drops the seat and forgets the holding; X registers S again
    (ENROLLED). B's seat step then runs under A's operation (answered from A's step): it must
    not drop the seat X took after, and the holding E stays with it."""
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    x = await catalog.student()
    assert outcomes(await registered(api, x, section)) == [("ENROLLED", None)]

    def dropper(hold: Hold) -> Any:
        promoter = promoter_with(api.container.promoter, seats=Held(api.container.seats, hold))
        return registrar_with(api.container.registrar, promoter=promoter)

    first, second = Hold("drop", of_student(x.id)), Hold("drop", of_student(x.id))
    a = asyncio.create_task(dropper(first).drop(STAFF, x.id, section.id))
    await first.reached()
    b = asyncio.create_task(dropper(second).drop(STAFF, x.id, section.id))
    await second.reached()  # B met S LEAVING under A's operation
    first.go.set()
    assert (await a).outcome is DropOutcome.DROPPED
    assert await holding(api, x, semester, section) is None
    assert outcomes(await registered(api, x, section)) == [("ENROLLED", None)]
    second.go.set()
    assert (await b).outcome is DropOutcome.DROPPED

    assert await standing(api, x, section) == ("ENROLLED", None), "the new seat stays"
    assert await holding(api, x, semester, section) == "E"


async def test_x_a_retry_whose_first_answer_was_lost_with_a_node_says_enrolled(
    api: Api, catalog: Catalog
) -> None:
    """Seed 930942334: X's register takes the seat and its reply is lost; the node holding
    the section step's remembered answer is lost too. The retry (same key, same operation)
    finds the seat taken: it was its own first run (the R carries the operation), so the
    answer is ENROLLED, not ALREADY_ENROLLED, and the seat is taken once."""
    semester = await catalog.semester()
    section = await catalog.section(5, semester)
    x = await catalog.student()

    class ReplyLost:
        """The seat step runs; its reply never arrives."""

        def __getattr__(self, name: str) -> Any:
            return getattr(api.container.seats, name)

        async def register(self, *args: Any, **kwargs: Any) -> Any:
            await api.container.seats.register(*args, **kwargs)
            raise Unavailable("the reply was lost")

    lossy = registrar_with(api.container.registrar, seats=ReplyLost())
    with pytest.raises(Unavailable):
        await lossy.register(STAFF, x.id, [section.id], "k-930")
    assert await standing(api, x, section) == ("ENROLLED", None)
    assert await holding(api, x, semester, section) == "R"
    memo = api.container.keys.section(section.id).memo(operation(x.id, "k-930"))
    assert await api.container.redis.delete(memo) == 1  # went with the lost node

    answer = await api.container.registrar.register(STAFF, x.id, [section.id], "k-930")

    assert [r.outcome for r in answer.results] == [RegisterOutcome.ENROLLED]
    assert await holding(api, x, semester, section) == "E"
