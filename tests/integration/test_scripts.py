"""Each Lua script against a real Redis: replies, state, stream jobs and published events."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from redis.typing import EncodableT, FieldT

from domain.model import SectionSetup
from infrastructure.container import Container
from infrastructure.redis.keys import Keys
from infrastructure.redis.pending import RedisPendingChanges
from infrastructure.redis.scripts import Scripts
from tests.conftest import Api
from tests.stored import read_stream

NOW = datetime.now(UTC)


async def open_section(
    c: Container,
    total: int,
    active: bool = True,
    opens: datetime | None = None,
    closes: datetime | None = None,
) -> uuid.UUID:
    sid = uuid.uuid4()
    await c.seats.open_section(
        SectionSetup(
            sid,
            total,
            active,
            opens or NOW - timedelta(hours=1),
            closes or NOW + timedelta(hours=1),
        )
    )
    return sid


async def run(c: Container, script: Any, sid: uuid.UUID, first: str) -> list:
    k = c.keys.section(sid)
    return await script(keys=k.script_keys, args=[first, str(sid), k.channel, "rid-1"])


async def stream_entries(c: Container, sid: uuid.UUID) -> list[dict[str, str]]:
    entries = await read_stream(c.redis, c.keys.section(sid).stream)
    return [f for _, f in entries if f.get("s") == str(sid)]


async def collect_events(c: Container, sid: uuid.UUID, action) -> list[dict]:
    pubsub = c.redis.pubsub()
    await pubsub.subscribe(c.keys.section(sid).channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    await action()
    events = []
    while (message := await pubsub.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            events.append(json.loads(message["data"]))
    await pubsub.aclose()
    return events


async def test_register_takes_seats_then_waitlists_with_jobs_and_events(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=1)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())

    async def both() -> None:
        assert await run(c, c.scripts.register, sid, a) == ["ENROLLED", 0, 0, ""]
        assert await run(c, c.scripts.register, sid, b) == ["WAITLISTED", 0, 1, ""]

    events = await collect_events(c, sid, both)
    assert [(e["k"], e["u"], e["a"], e["w"], e["v"]) for e in events] == [
        ("enroll", a, 0, 0, 2),
        ("join", b, 0, 1, 3),
    ]
    jobs = await stream_entries(c, sid)
    assert [(j["k"], j["u"], j["v"], j.get("q"), j["rid"]) for j in jobs] == [
        ("enroll", a, "2", None, "rid-1"),
        ("join", b, "3", "1", "rid-1"),
    ]


async def test_register_again_is_already_enrolled_or_waitlisted_and_changes_nothing(
    api: Api,
) -> None:
    c = api.container
    sid = await open_section(c, total=1)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await run(c, c.scripts.register, sid, a)
    await run(c, c.scripts.register, sid, b)
    before = len(await stream_entries(c, sid))
    assert await run(c, c.scripts.register, sid, a) == ["ALREADY_ENROLLED", 0, 0, ""]
    assert await run(c, c.scripts.register, sid, b) == ["ALREADY_WAITLISTED", 0, 1, ""]
    assert len(await stream_entries(c, sid)) == before
    assert await c.redis.hget(c.keys.section(sid).meta, "version") == "3"


async def test_register_refuses_unknown_inactive_and_closed_sections(api: Api) -> None:
    c = api.container
    student = str(uuid.uuid4())
    assert (await run(c, c.scripts.register, uuid.uuid4(), student))[3] == "SECTION_NOT_FOUND"
    inactive = await open_section(c, total=5, active=False)
    assert await run(c, c.scripts.register, inactive, student) == [
        "REJECTED",
        5,
        0,
        "SECTION_INACTIVE",
    ]
    early = await open_section(
        c, 5, opens=NOW + timedelta(hours=1), closes=NOW + timedelta(hours=2)
    )
    late = await open_section(c, 5, opens=NOW - timedelta(hours=2), closes=NOW - timedelta(hours=1))
    for sid in (early, late):
        assert await run(c, c.scripts.register, sid, student) == [
            "REJECTED",
            5,
            0,
            "REGISTRATION_CLOSED",
        ]
        assert await stream_entries(c, sid) == []


async def test_scripts_refuse_a_shard_whose_state_is_not_loaded(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=5)
    await c.redis.delete(c.keys.section(sid).ready)
    try:
        assert (await run(c, c.scripts.register, sid, str(uuid.uuid4())))[3] == "UNAVAILABLE"
        assert (await run(c, c.scripts.drop, sid, str(uuid.uuid4())))[0] == "UNAVAILABLE"
        k = c.keys.section(sid)
        reply = await c.scripts.capacity(keys=k.script_keys, args=[9, str(sid), k.channel, ""])
        assert reply[0] == "UNAVAILABLE"
    finally:
        await c.redis.set(c.keys.section(sid).ready, "1")


async def test_drop_promotes_the_head_in_the_same_step(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=1)
    a, b, d = (str(uuid.uuid4()) for _ in range(3))
    for s in (a, b, d):
        await run(c, c.scripts.register, sid, s)

    async def drop() -> None:
        assert await run(c, c.scripts.drop, sid, a) == ["DROPPED", 0, f"e:{b}"]

    events = await collect_events(c, sid, drop)
    assert [(e["k"], e["h"], e["p"], e["w"], e["a"]) for e in events] == [("drop", 1, [b], 1, 0)]
    k = c.keys.section(sid)
    assert await c.redis.smembers(k.enrolled) == {b}
    assert await c.redis.zrange(k.waitlist, 0, -1) == [d]
    jobs = await stream_entries(c, sid)
    assert [(j["k"], j["u"]) for j in jobs[-2:]] == [("drop", a), ("promote", b)]


async def test_drop_without_a_line_frees_the_seat(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=2)
    a = str(uuid.uuid4())
    await run(c, c.scripts.register, sid, a)
    assert await run(c, c.scripts.drop, sid, a) == ["DROPPED", 2]
    assert await run(c, c.scripts.drop, sid, a) == ["NOT_REGISTERED", 2]
    assert (await run(c, c.scripts.drop, uuid.uuid4(), a))[0] == "NOT_FOUND"


async def test_leaving_the_waitlist_reports_the_rank_that_left(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=1)
    students = [str(uuid.uuid4()) for _ in range(4)]
    for s in students:
        await run(c, c.scripts.register, sid, s)

    async def leave() -> None:
        assert await run(c, c.scripts.drop, sid, students[2]) == ["LEFT_WAITLIST", 0]

    events = await collect_events(c, sid, leave)
    assert [(e["k"], e["r"], e["h"], e["w"]) for e in events] == [("leave", 2, 0, 2)]
    assert await c.redis.zrange(c.keys.section(sid).waitlist, 0, -1) == [students[1], students[3]]


async def test_capacity_raise_promotes_in_join_order_and_lowering_below_enrolled_is_refused(
    api: Api,
) -> None:
    c = api.container
    sid = await open_section(c, total=1)
    students = [str(uuid.uuid4()) for _ in range(5)]
    for s in students:
        await run(c, c.scripts.register, sid, s)
    k = c.keys.section(sid)
    assert await c.scripts.capacity(keys=k.script_keys, args=[3, str(sid), k.channel, ""]) == [
        "OK",
        3,
        0,
        f"e:{students[1]}",
        f"e:{students[2]}",
    ]
    assert await c.redis.smembers(k.enrolled) == set(students[:3])
    assert await c.redis.zrange(k.waitlist, 0, -1) == students[3:]
    refused = await c.scripts.capacity(keys=k.script_keys, args=[2, str(sid), k.channel, ""])
    assert refused == ["BELOW_ENROLLED", 3, 0]
    assert await c.redis.hget(k.meta, "total") == "3"
    jobs = await stream_entries(c, sid)
    assert [(j["k"], j.get("u"), j.get("n")) for j in jobs[-3:]] == [
        ("capacity", None, "3"),
        ("promote", students[1], None),
        ("promote", students[2], None),
    ]


async def test_open_section_creates_once_then_only_refreshes_static_data(api: Api) -> None:
    c = api.container
    sid = await open_section(c, total=2)
    await run(c, c.scripts.register, sid, str(uuid.uuid4()))
    await c.seats.open_section(SectionSetup(sid, 99, False, NOW, NOW + timedelta(hours=1)))
    k = c.keys.section(sid)
    meta = await c.redis.hgetall(k.meta)
    assert (meta["total"], meta["active"], await c.redis.get(k.seats)) == ("2", "0", "1")


async def test_load_section_replaces_state_and_continues_the_join_sequence(api: Api) -> None:
    c = api.container
    sid = uuid.uuid4()
    k = c.keys.section(sid)
    enrolled = [str(uuid.uuid4()) for _ in range(1200)]  # more than one SADD chunk
    line = [(5, str(uuid.uuid4())), (9, str(uuid.uuid4()))]
    offered = str(uuid.uuid4())
    args = [
        1201,
        1,
        0,
        10**13,
        7,
        str(sid),
        k.channel,
        1,
        1,
        "mode",
        "offer",
        len(enrolled),
        *enrolled,
        1,
        offered,
        "o:99",
        *[x for p in line for x in p],
    ]
    assert await c.scripts.load_section(keys=k.script_keys, args=args) == 0
    assert await c.redis.scard(k.enrolled) == 1200
    assert await c.redis.hget(k.meta, "seq") == "9"
    assert await c.redis.hget(k.meta, "mode") == "offer"
    assert await c.redis.hget(k.held, offered) == "o:99"
    assert await c.redis.zscore(k.held_index, f"{sid}|{offered}") == 99
    newcomer = str(uuid.uuid4())
    assert await run(c, c.scripts.register, sid, newcomer) == ["WAITLISTED", 0, 3, ""]
    assert await c.redis.zscore(k.waitlist, newcomer) == 10


async def test_begin_release_and_renew_respect_the_holder(api: Api) -> None:
    c = api.container
    key = f"{c.keys.prefix}probe"
    assert await c.scripts.begin(keys=[key], args=["mine", 10_000]) is None
    assert await c.scripts.begin(keys=[key], args=["yours", 10_000]) == "mine"
    assert await c.scripts.renew(keys=[key], args=["yours", 50_000]) == 0
    assert await c.scripts.renew(keys=[key], args=["mine", 50_000]) == 1
    assert await c.redis.pttl(key) > 10_000
    assert await c.scripts.release(keys=[key], args=["yours"]) == 0
    assert await c.scripts.release(keys=[key], args=["mine"]) == 1
    assert await c.redis.exists(key) == 0


async def test_a_flushed_script_cache_is_reloaded_transparently(api: Api) -> None:
    c = api.container
    sids = [await open_section(c, total=5) for _ in range(3)]
    await c.redis.script_flush()
    results = await c.seats.register(uuid.uuid4(), sids, "rid")
    assert [r.outcome.value for r in results] == ["ENROLLED"] * 3


def test_keys_of_a_section_share_one_hash_slot() -> None:
    keys = Keys("t:", 16)
    k = keys.section(uuid.uuid4())
    tags = {key[key.index("{") : key.index("}") + 1] for key in k.script_keys}
    assert len(tags) == 1


async def test_concurrent_registrations_never_oversell(api: Api) -> None:
    """Invariant: no oversell under 500 concurrent script calls on 7 seats."""
    c = api.container
    sid = await open_section(c, total=7)
    replies = await asyncio.gather(
        *(run(c, c.scripts.register, sid, str(uuid.uuid4())) for _ in range(500))
    )
    outcomes = [r[0] for r in replies]
    assert outcomes.count("ENROLLED") == 7
    assert sorted(r[2] for r in replies if r[0] == "WAITLISTED") == list(range(1, 494))


async def test_pending_gives_where_the_stream_starts_and_the_entries_after_an_id(
    api: Api,
) -> None:
    c = api.container
    stream = c.keys.stream(0)
    assert await c.scripts.pending(keys=[stream], args=["0-0", 10]) == ["", []]
    fields: dict[FieldT, EncodableT] = {"k": "capacity", "s": str(uuid.uuid4()), "v": "1"}
    ids = [str(await c.redis.xadd(stream, fields)) for _ in range(5)]
    first, entries = await c.scripts.pending(keys=[stream], args=[ids[1], 2])
    assert first == ids[0] and [e[0] for e in entries] == ids[2:4]
    await c.redis.xtrim(stream, minid=ids[3], approximate=False)
    first, entries = await c.scripts.pending(keys=[stream], args=[ids[1], 10])
    assert first == ids[3] and [e[0] for e in entries] == ids[3:]


async def test_pending_changes_keep_a_copy_of_the_tails_that_follows_trims_and_pages(
    api: Api,
) -> None:
    """RedisPendingChanges: each student's entries still in the streams, past a page of the
    script (2000), and none the persister trimmed."""
    c = api.container
    pending = c.pending
    me, other = uuid.uuid4(), uuid.uuid4()
    stream = c.keys.stream(1)
    mine = []
    for i in range(2300):
        student = me if i % 1000 == 999 else other
        fields: dict[FieldT, EncodableT] = {
            "k": "enroll",
            "s": str(uuid.uuid4()),
            "u": str(student),
            "v": str(i + 1),
            "at": "1",
        }
        entry = str(await c.redis.xadd(stream, fields))
        if student == me:
            mine.append(entry)
    (found, nobody) = await pending.of_students([me, uuid.uuid4()])
    assert [change.id for change in found] == mine and len(mine) == 2
    assert nobody == []
    await c.redis.xtrim(stream, minid=mine[1], approximate=False)  # the first acknowledged
    (found,) = await pending.of_students([me])
    assert [change.id for change in found] == mine[1:]
    await c.redis.delete(stream)
    assert await pending.of_students([me, other]) == [[], []]
    unreadable: dict[FieldT, EncodableT] = {"k": "nonsense", "u": str(me)}
    await c.redis.xadd(stream, unreadable)  # the persister dead-letters it; reads go on
    readable: dict[FieldT, EncodableT] = {"k": "drop", "s": str(me), "u": str(me), "v": "1"}
    readable["at"] = "1"
    entry = str(await c.redis.xadd(stream, readable))
    assert [[change.id for change in found] for found in await pending.of_students([me])] == [
        [entry]
    ]


class ReadThenHold:
    """Scripts whose first run_many reads Redis, then waits for `go` before answering: a
    refresh of the pending changes caught between its read and its return."""

    def __init__(self, inner: Scripts) -> None:
        self._inner = inner
        self.arrived, self.go = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def run_many(self, calls: Any) -> list[Any]:
        replies = await self._inner.run_many(calls)
        if not self.arrived.is_set():
            self.arrived.set()
            await self.go.wait()
        return replies


async def test_a_read_waits_for_a_refresh_begun_after_it_not_one_under_way(api: Api) -> None:
    """A refresh under way may have read the streams before the caller's write was answered:
    a read that arrives then must not take its answer."""
    c = api.container
    scripts = ReadThenHold(c.scripts)
    pending = RedisPendingChanges(c.redis, cast(Scripts, scripts), c.keys)
    me = uuid.uuid4()
    earlier = asyncio.create_task(pending.of_students([me]))
    await asyncio.wait_for(scripts.arrived.wait(), 5)
    fields: dict[FieldT, EncodableT] = {"k": "enroll", "s": str(me), "u": str(me), "v": "1"}
    fields["at"] = "1"
    written = str(await c.redis.xadd(c.keys.stream(0), fields))  # answered now
    later = asyncio.create_task(pending.of_students([me]))
    await asyncio.sleep(0.05)
    scripts.go.set()
    assert await earlier == [[]]
    assert [[change.id for change in found] for found in await later] == [[written]]
