"""Subscriptions over graphql-transport-ws on a real uvicorn: auth, coded refusals,
seatUpdates (snapshot, then every change, versions never backwards) and waitlistPosition
(current state, every rank change, completion at a final state)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from domain.model import Role
from tests.client import drop, registered
from tests.conftest import Api, Catalog
from tests.servers import ws_url
from tests.wsclient import SEAT_UPDATES, WAITLIST_POSITION, Closed, GqlSocket


def codes(message: dict[str, Any]) -> list[str]:
    assert message["type"] == "error", message
    return [e["extensions"]["code"] for e in message["payload"]]


@pytest.mark.parametrize("token", ["not-a-jwt", "expired"])
async def test_a_bad_token_in_connection_init_closes_the_socket_with_4403(
    api: Api, server: str, token: str
) -> None:
    if token == "expired":
        token = api.container.tokens.issue(Role.STAFF, "staff-1", lifetime=-60)
    with pytest.raises(Closed) as closed:
        async with GqlSocket.open(ws_url(server), token=token):
            pass
    assert closed.value.code == 4403


async def test_without_a_token_public_seat_updates_work_and_waitlists_are_refused(
    catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=3)
    student = await catalog.student()
    async with GqlSocket.open(ws_url(server)) as ws:
        seats = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await ws.data(seats))["availableSeats"] == 3
        mine = await ws.subscribe(
            WAITLIST_POSITION, student=str(student.id), section=str(section.id)
        )
        assert codes(await ws.receive(mine)) == ["UNAUTHENTICATED"]


async def test_another_students_waitlist_is_forbidden_and_the_socket_stays_open(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=2)
    me, other = await catalog.students(2)
    async with GqlSocket.open(ws_url(server), token=api.student_token(me.id)) as ws:
        theirs = await ws.subscribe(
            WAITLIST_POSITION, student=str(other.id), section=str(section.id)
        )
        assert codes(await ws.receive(theirs)) == ["FORBIDDEN"]
        seats = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        assert (await ws.data(seats))["totalSeats"] == 2
        assert ws.closed is None


async def test_seat_updates_of_an_unknown_section_is_not_found(
    catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=2)
    unknown = str(uuid.uuid4())
    async with GqlSocket.open(ws_url(server)) as ws:
        op = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id), unknown])
        message = await ws.receive(op)
        assert codes(message) == ["NOT_FOUND"]
        assert message["payload"][0]["extensions"]["sectionIds"] == [unknown]


async def test_seat_updates_sends_one_snapshot_per_section_then_every_change(
    api: Api, catalog: Catalog, server: str
) -> None:
    semester = await catalog.semester()
    a = await catalog.section(seats=2, semester=semester)
    b = await catalog.section(seats=5, semester=semester)
    students = await catalog.students(3)
    async with GqlSocket.open(ws_url(server)) as ws:
        op = await ws.subscribe(SEAT_UPDATES, ids=[str(a.id), str(b.id), str(a.id)])
        snapshot = [await ws.data(op), await ws.data(op)]
        assert {s["sectionId"] for s in snapshot} == {str(a.id), str(b.id)}
        for student in students:
            await registered(api, student, a)
        await registered(api, students[0], b)
        changes = [await ws.data(op) for _ in range(4)]
        await asyncio.sleep(0.2)
        assert ws.pending(op) == 0, "one message per change, nothing more"
    of_a = [c for c in changes if c["sectionId"] == str(a.id)]
    assert [(c["availableSeats"], c["waitlistLength"]) for c in of_a] == [(1, 0), (0, 0), (0, 1)]
    first_a = next(s for s in snapshot if s["sectionId"] == str(a.id))
    assert [c["version"] for c in of_a] == [first_a["version"] + n for n in (1, 2, 3)]
    assert [c["availableSeats"] for c in changes if c["sectionId"] == str(b.id)] == [4]


async def test_a_subscriber_never_sees_a_version_go_backwards_under_a_rush(
    api: Api, catalog: Catalog, server: str
) -> None:
    """Invariant: per section, versions strictly grow; the last update is the final state."""
    section = await catalog.section(seats=10)
    students = await catalog.students(40)
    async with GqlSocket.open(ws_url(server)) as ws:
        op = await ws.subscribe(SEAT_UPDATES, ids=[str(section.id)])
        updates = [await ws.data(op)]
        await asyncio.gather(*(registered(api, s, section) for s in students))
        while updates[-1]["waitlistLength"] < 30:
            updates.append(await ws.data(op))
    versions = [u["version"] for u in updates]
    assert versions == sorted(set(versions))
    assert (updates[-1]["availableSeats"], updates[-1]["waitlistLength"]) == (0, 30)


async def test_waitlist_position_follows_every_rank_change_and_completes_when_enrolled(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=1)
    holder, first, second, me = await catalog.students(4)
    for student in (holder, first, second, me):
        await registered(api, student, section)
    async with GqlSocket.open(ws_url(server), token=api.student_token(me.id)) as ws:
        op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
        seen = [await ws.data(op)]
        await drop(api, second, section)  # rank 2 leaves the line
        seen.append(await ws.data(op))
        await drop(api, holder, section)  # the head is promoted
        seen.append(await ws.data(op))
        await drop(api, first, section)  # my turn
        seen.append(await ws.data(op))
        assert (await ws.receive(op))["type"] == "complete"
    assert [(s["status"], s["position"]) for s in seen] == [
        ("WAITING", 3),
        ("WAITING", 2),
        ("WAITING", 1),
        ("ENROLLED", None),
    ]


async def test_waitlist_position_completes_when_the_student_leaves_the_line(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=1)
    holder, me = await catalog.students(2)
    await registered(api, holder, section)
    await registered(api, me, section)
    async with GqlSocket.open(ws_url(server), token=api.token()) as ws:  # staff may watch
        op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
        assert (await ws.data(op))["position"] == 1
        await registered(api, (await catalog.students(1))[0], section)  # joins behind me
        await drop(api, me, section)
        assert (await ws.data(op))["status"] == "REMOVED"
        assert (await ws.receive(op))["type"] == "complete"


async def test_waitlist_position_of_a_student_not_waiting_completes_at_once(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=1)
    enrolled, outside = await catalog.students(2)
    await registered(api, enrolled, section)
    async with GqlSocket.open(ws_url(server), token=api.token()) as ws:
        for student, status in ((enrolled, "ENROLLED"), (outside, "NOT_WAITLISTED")):
            op = await ws.subscribe(
                WAITLIST_POSITION, student=str(student.id), section=str(section.id)
            )
            assert (await ws.data(op))["status"] == status
            assert (await ws.receive(op))["type"] == "complete"


async def test_raising_capacity_moves_a_waiting_student_up_by_the_seats_added(
    api: Api, catalog: Catalog, server: str
) -> None:
    section = await catalog.section(seats=1)
    students = await catalog.students(5)
    for student in students:
        await registered(api, student, section)
    me = students[-1]
    async with GqlSocket.open(ws_url(server), token=api.student_token(me.id)) as ws:
        op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
        assert (await ws.data(op))["position"] == 4
        await api.staff(
            "mutation($s: UUID!) { setSectionCapacity(sectionId: $s, totalSeats: 3) { id } }",
            s=str(section.id),
        )
        # Each seat may reach its student in a step of its own (rules checked first).
        positions = [(await ws.data(op))["position"]]
        while positions[-1] != 2:
            positions.append((await ws.data(op))["position"])
        assert positions in ([2], [3, 2])


async def test_a_waitlist_position_stream_ends_when_its_token_expires(
    api: Api, catalog: Catalog, server: str
) -> None:
    """Finding 9: the stream speaks of one student, so it lasts only as long as the token
    that opened it: then it ends with UNAUTHENTICATED, even with no event to carry it."""
    section = await catalog.section(seats=1)
    holder, me = await catalog.students(2)
    await registered(api, holder, section)
    await registered(api, me, section)
    token = api.container.tokens.issue(Role.STUDENT, str(me.id), lifetime=2)
    async with GqlSocket.open(ws_url(server), token=token) as ws:
        op = await ws.subscribe(WAITLIST_POSITION, student=str(me.id), section=str(section.id))
        assert (await ws.data(op))["position"] == 1
        ended = await ws.receive(op, timeout=5.0)
        assert ended["type"] == "next" and ended["payload"]["data"] is None, ended
        codes = [e["extensions"]["code"] for e in ended["payload"]["errors"]]
        assert codes == ["UNAUTHENTICATED"], ended
        assert (await ws.receive(op))["type"] == "complete"
