"""Exactly-once answers when a reply is lost between Redis and the app (issue 12, finding 7,
"What must exist" item 4): the scripts ran, the connection dropped before their replies
arrived. The app talks to Redis only through the proxy of tests/lossy.py (`lossy_api`),
which loses the reply of one request on command.

Each test states what the client must be told and what must have happened once. The
invariant throughout: the answer a client gets (and the one cached under its idempotency
key) is the answer of the work that happened, never the ALREADY_ENROLLED or NOT_REGISTERED
that a re-sent script computes from its own first run."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import pytest

from domain.model import Section
from tests.client import DROP, REGISTER, drop_input, register_input
from tests.conftest import Api, Catalog
from tests.lossy import LossyProxy
from tests.stored import read_stream


async def post(api: Api, query: str, student_id: UUID, **variables: Any) -> bytes:
    """The response body as sent, for byte-for-byte comparison of replays."""
    response = await api.client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {api.student_token(student_id)}"},
    )
    assert response.status_code == 200, response.text
    return response.content


async def register(api: Api, student_id: UUID, section_id: UUID, key: str | None) -> bytes:
    return await post(api, REGISTER, student_id, i=register_input(student_id, [section_id], key))


async def drop(api: Api, student_id: UUID, section_id: UUID, key: str | None) -> bytes:
    return await post(api, DROP, student_id, i=drop_input(student_id, section_id, key))


def registered(body: bytes) -> dict[str, Any]:
    parsed = json.loads(body)
    assert "errors" not in parsed, parsed["errors"]
    (result,) = parsed["data"]["register"]["results"]
    return dict(result)


def dropped(body: bytes) -> dict[str, Any]:
    parsed = json.loads(body)
    assert "errors" not in parsed, parsed["errors"]
    return dict(parsed["data"]["drop"])


async def stream_entries(api: Api, section_id: UUID, student_id: UUID) -> list[str]:
    """The kinds of the shard stream's entries for this student in this section, in order."""
    c = api.container
    entries = await read_stream(c.redis, c.keys.section(section_id).stream)
    return [
        f["k"]
        for _, f in entries
        if f.get("s") == str(section_id) and f.get("u") == str(student_id)
    ]


async def holding(api: Api, student_id: UUID, section: Section) -> str | None:
    """What the student's holdings (the rules' count of credits and time) say of a section."""
    c = api.container
    raw = await c.redis.hget(c.keys.holdings(student_id, section.semester_id), str(section.id))
    return None if raw is None else str(json.loads(raw)["h"])


async def cached_answers(api: Api, student_id: UUID) -> list[dict[str, Any]]:
    """The answers stored under this student's idempotency keys."""
    c = api.container
    found = []
    async for key in c.redis.scan_iter(match=f"{c.keys.prefix}idem:{{stu-{student_id}}}:*"):
        record = json.loads(str(await c.redis.get(key)))
        found.append(record.get("answer"))
    return found


async def seat_counts(api: Api, section_id: UUID) -> dict[str, Any]:
    c = api.container
    k = c.keys.section(section_id)
    return {
        "seats": int(str(await c.redis.get(k.seats))),
        "enrolled": sorted(await c.redis.smembers(k.enrolled)),
        "waiting": await c.redis.zrange(k.waitlist, 0, -1),
        "held": await c.redis.hgetall(k.held),
    }


@pytest.mark.parametrize("key", [None, "enroll-1"], ids=["no key", "idempotency key"])
async def test_a_lost_reply_to_the_seat_scripts_still_answers_enrolled_and_takes_one_seat(
    lossy_api: Api, lossy: LossyProxy, lossy_catalog: Catalog, key: str | None
) -> None:
    """Invariant: the client is told ENROLLED (what register.lua did), one enroll entry
    reaches the stream, one seat is taken, and the rules count the section as held."""
    api, catalog = lossy_api, lossy_catalog
    section = await catalog.section(seats=2)
    student = await catalog.student()
    fault = lossy.lose_reply(api.container.scripts.register.sha, str(student.id))
    result = registered(await register(api, student.id, section.id, key))
    assert fault.fired.is_set(), "the register script's reply was never lost"
    observed = {
        "outcome": result["outcome"],
        "availableSeats": result["availableSeats"],
        "stream": await stream_entries(api, section.id, student.id),
        "seats": (await seat_counts(api, section.id))["seats"],
        "holding": await holding(api, student.id, section),
    }
    expected = {
        "outcome": "ENROLLED",
        "availableSeats": 1,
        "stream": ["enroll"],
        "seats": 1,
        "holding": "E",
    }
    assert observed == expected


@pytest.mark.parametrize("key", [None, "drop-1"], ids=["no key", "idempotency key"])
async def test_a_lost_reply_to_a_drop_answers_dropped_and_gives_the_seat_to_the_head_once(
    lossy_api: Api, lossy: LossyProxy, lossy_catalog: Catalog, key: str | None
) -> None:
    """Invariant: the client is told DROPPED, and the freed seat went to the head of the
    waitlist within the drop (the contract: promotion is part of the drop), exactly once."""
    api, catalog = lossy_api, lossy_catalog
    section = await catalog.section(seats=1)
    leaver, head = await catalog.students(2)
    assert registered(await register(api, leaver.id, section.id, None))["outcome"] == "ENROLLED"
    assert registered(await register(api, head.id, section.id, None))["outcome"] == "WAITLISTED"
    fault = lossy.lose_reply(api.container.scripts.drop.sha, str(leaver.id))
    first = await drop(api, leaver.id, section.id, key)
    assert fault.fired.is_set(), "the drop script's reply was never lost"
    observed = {
        "answer": dropped(first),
        "leaver": await stream_entries(api, section.id, leaver.id),
        "head": await stream_entries(api, section.id, head.id),
        "section": await seat_counts(api, section.id),
        "head holding": await holding(api, head.id, section),
        "leaver holding": await holding(api, leaver.id, section),
    }
    expected = {
        "answer": {
            "studentId": str(leaver.id),
            "sectionId": str(section.id),
            "outcome": "DROPPED",
            "availableSeats": 0,
        },
        "leaver": ["enroll", "drop"],
        "head": ["join", "promote"],
        "section": {"seats": 0, "enrolled": [str(head.id)], "waiting": [], "held": {}},
        "head holding": "E",
        "leaver holding": None,
    }
    assert observed == expected
    if key is not None:
        assert await drop(api, leaver.id, section.id, key) == first
        assert [a["outcome"] for a in await cached_answers(api, leaver.id)] == ["DROPPED"]


async def test_requests_sharing_a_lost_batch_each_get_their_own_first_answer(
    lossy_api: Api, lossy: LossyProxy, lossy_catalog: Catalog
) -> None:
    """Invariant: when the Coalescer's shared pipeline loses its reply, each request still
    gets the answer of what its own script did: three ENROLLED and one WAITLISTED for
    four students and three seats, each matching where Redis put the student and what
    the rules count as held."""
    api, catalog = lossy_api, lossy_catalog
    section = await catalog.section(seats=3)
    students = await catalog.students(4)
    await api.container.sections.setups([section.id])  # cached: every request in lockstep
    ids = [str(s.id) for s in students]
    fault = lossy.lose_reply(api.container.scripts.register.sha, ids[0])
    bodies = await asyncio.gather(*(register(api, s.id, section.id, None) for s in students))
    assert fault.fired.is_set(), "the shared batch's reply was never lost"
    sha = api.container.scripts.register.sha.encode()
    in_batch = {c[3 + int(c[2])].decode() for c in fault.commands if c[:2] == [b"EVALSHA", sha]}
    assert set(ids) <= in_batch, "the four register calls did not share one pipeline"
    state = await seat_counts(api, section.id)
    answers = {sid: registered(body) for sid, body in zip(ids, bodies, strict=True)}
    observed = {
        s.id: (
            answers[str(s.id)]["outcome"],
            answers[str(s.id)]["waitlistPosition"],
            await stream_entries(api, section.id, s.id),
            await holding(api, s.id, section),
        )
        for s in students
    }
    expected = {
        s.id: ("ENROLLED", None, ["enroll"], "E")
        if str(s.id) in state["enrolled"]
        else ("WAITLISTED", state["waiting"].index(str(s.id)) + 1, ["join"], "W")
        for s in students
    }
    assert observed == expected
    assert len(state["enrolled"]) == 3 and len(state["waiting"]) == 1


@pytest.mark.parametrize(
    ("script", "key"),
    [
        # a retry with the same key gets the first answer, byte for byte, when the write of
        # that answer (finish) lost its reply
        ("answer", "finish-1"),
        # a begin that took the key but lost its reply is recognized as this request's
        # own (begin.lua): the request does its work once and answers ENROLLED
        ("begin", "begin-1"),
    ],
)
async def test_a_lost_reply_to_the_idempotency_steps_still_answers_once_byte_for_byte(
    lossy_api: Api, lossy: LossyProxy, lossy_catalog: Catalog, script: str, key: str
) -> None:
    """Invariant: a lost reply to the idempotency key's own steps changes neither the answer
    nor how often the work is done."""
    api, catalog = lossy_api, lossy_catalog
    section = await catalog.section(seats=2)
    student = await catalog.student()
    fault = lossy.lose_reply(getattr(api.container.scripts, script).sha, str(student.id))
    first = await register(api, student.id, section.id, key)
    assert fault.fired.is_set(), f"the {script} script never lost its reply"
    assert registered(first)["outcome"] == "ENROLLED"
    assert await register(api, student.id, section.id, key) == first
    assert await stream_entries(api, section.id, student.id) == ["enroll"]


async def test_a_retry_after_a_lost_reply_gets_the_first_answer_and_never_caches_already(
    lossy_api: Api, lossy: LossyProxy, lossy_catalog: Catalog
) -> None:
    """Invariant: with an idempotency key, the request whose seat script lost its reply
    either answers ENROLLED or refuses with UNAVAILABLE (a retryable refusal); the client's
    retry with the same key then gets ENROLLED (the same bytes, if the first answered),
    and what is cached under the key is ENROLLED, not ALREADY_ENROLLED."""
    api, catalog = lossy_api, lossy_catalog
    section = await catalog.section(seats=2)
    student = await catalog.student()
    fault = lossy.lose_reply(api.container.scripts.register.sha, str(student.id))
    first = await register(api, student.id, section.id, "retry-1")
    assert fault.fired.is_set(), "the register script's reply was never lost"
    errors = json.loads(first).get("errors")
    if errors:
        assert [e["extensions"]["code"] for e in errors] == ["UNAVAILABLE"], errors
    retry = await register(api, student.id, section.id, "retry-1")
    observed = {
        "first": None if errors else registered(first)["outcome"],
        "retry": registered(retry)["outcome"],
        "cached": [a["results"][0]["outcome"] for a in await cached_answers(api, student.id)],
        "stream": await stream_entries(api, section.id, student.id),
    }
    expected = {
        "first": None if errors else "ENROLLED",
        "retry": "ENROLLED",
        "cached": ["ENROLLED"],
        "stream": ["enroll"],
    }
    assert observed == expected
    if not errors:
        assert retry == first
