"""The persister: exactly once across crashes, dead letters, shard leases."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from redis.typing import EncodableT, FieldT

from domain.changes import ChangeKind, parse_position
from infrastructure.cli.worker import make_persister
from infrastructure.redis.streams import RedisChangeStream
from tests.client import DROP, REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.invariants import Answers, check_answers_persisted, check_postgres, check_redis
from tests.waiting import wait_until

KILLS = 5


def _worker_process(settings, name: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "COURSEREG_KEY_PREFIX": settings.key_prefix,
        "COURSEREG_SHARDS": str(settings.shards),
        "COURSEREG_JWT_SECRET": settings.jwt_secret,
        "COURSEREG_WORKER_BATCH": "40",
        "COURSEREG_LEASE_MS": "1500",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "infrastructure.cli", "worker", "--name", name], env=env
    )


async def _entries_added(api: Api) -> int:
    """Every entry ever appended to the shard streams (trimming does not lower it)."""
    total = 0
    for shard in range(api.container.keys.shards):
        stream = api.container.keys.stream(shard)
        if await api.container.redis.exists(stream):
            info = await api.container.redis.xinfo_stream(stream)
            total += int(info["entries-added"])
    return total


async def _applied(database_url: str) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        return int(
            await connection.fetchval("SELECT coalesce(sum(applied), 0) FROM stream_offsets")
        )
    finally:
        await connection.close()


async def test_workers_killed_mid_batch_lose_and_repeat_nothing(
    api: Api, catalog: Catalog, settings
) -> None:
    """Invariant: every acknowledged change reaches Postgres exactly once although worker
    processes are SIGKILLed again and again during the rush."""
    sections = [await catalog.section(seats=20) for _ in range(8)]
    answers = Answers()
    stop = asyncio.Event()

    async def client(student) -> None:
        token = api.student_token(student.id)
        chosen = random.sample(sections, 3)
        body = await api.gql(
            REGISTER,
            token,
            i={"studentId": str(student.id), "sectionIds": [str(s.id) for s in chosen]},
        )
        for result in body["data"]["register"]["results"]:
            answers.record(student.id, uuid.UUID(result["sectionId"]), result["outcome"])
        if random.random() < 0.3:
            section = chosen[0]
            body = await api.gql(
                DROP, token, i={"studentId": str(student.id), "sectionId": str(section.id)}
            )
            answers.record(student.id, section.id, body["data"]["drop"]["outcome"])

    async def killer() -> int:
        """Start a worker, wait until it is writing, then SIGKILL it at a random moment."""
        for kill in range(KILLS):
            process = _worker_process(settings, f"victim-{kill}")
            before = await _applied(settings.database_url)
            for _ in range(500):
                if await _applied(settings.database_url) > before:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(random.uniform(0, 0.15))
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait)
        stop.set()
        return KILLS

    async def load() -> None:
        while not stop.is_set():
            batch = await catalog.students(20)
            await asyncio.gather(*(client(s) for s in batch))
            await asyncio.sleep(0.15)

    kills, _ = await asyncio.gather(killer(), load())

    survivor = make_persister(api.container, "survivor")
    halt = asyncio.Event()
    running = asyncio.create_task(survivor.run(halt))
    try:
        await Worker(survivor, api.container).drain(timeout=60)
    finally:
        halt.set()
        await running
    ids = [s.id for s in sections]
    redis_counts = await check_redis(api.container, ids)
    pg_counts = await check_postgres(api.container, settings.database_url, ids)
    persisted = await check_answers_persisted(settings.database_url, answers)
    added, applied = await _entries_added(api), await _applied(settings.database_url)
    print(
        f"\nworker SIGKILLs={kills} answers={answers.count} stream entries={added} "
        f"applied={applied} lost={persisted['lost']} oversold={pg_counts['oversold']} "
        f"duplicates={pg_counts['duplicates'] + redis_counts['duplicates']}"
    )
    assert kills == KILLS
    assert applied == added, "each stream entry applied exactly once"


def _poison(section_id: uuid.UUID) -> dict[FieldT, EncodableT]:
    """An enrollment of a student Postgres does not know: a foreign-key violation."""
    now = int(datetime.now(UTC).timestamp() * 1000)
    return {
        "k": "enroll",
        "s": str(section_id),
        "u": str(uuid.uuid4()),
        "v": "99",
        "at": str(now),
        "rid": "poison",
    }


async def test_a_poison_change_goes_to_dead_letters_without_blocking_its_shard(
    api: Api, catalog: Catalog, settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Also: the dead letter is logged once, naming its request."""
    caplog.set_level(logging.ERROR)
    section = await catalog.section(seats=5)
    stream = api.container.keys.section(section.id).stream
    await api.container.redis.xadd(stream, _poison(section.id))
    good = await catalog.students(3)
    for student in good:
        await api.gql(
            REGISTER, api.token(), i={"studentId": str(student.id), "sectionIds": [str(section.id)]}
        )
    persister = make_persister(api.container, "poison-eater")
    persister.max_attempts = 2
    halt = asyncio.Event()
    running = asyncio.create_task(persister.run(halt))
    try:
        await Worker(persister, api.container).drain(timeout=30)
    finally:
        halt.set()
        await running
    assert persister.stats.dead_lettered == 1
    logged = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    assert [getattr(r, "request_id", None) for r in logged] == ["poison"]
    shard = int(stream.split("shard-")[1].rstrip("}"))
    (letter,) = await api.container.stream.dead_letters(shard)
    assert letter["rid"] == "poison" and "ForeignKeyViolation" in letter["error"]
    health = (await api.client.get("/health")).json()
    assert health["dead_letters"] == 1 and health["status"] == "degraded"
    connection = await asyncpg.connect(settings.database_url)
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM registrations WHERE section_id = $1", section.id
        )
    finally:
        await connection.close()
    assert count == 3


async def test_a_dead_letter_keeps_its_own_entry_when_another_shard_has_the_same_id(
    api: Api,
) -> None:
    """Entry ids are per stream, so two shards can hold the same one (same millisecond).
    A dead letter keeps its own shard's entry whole, whatever another shard acknowledged
    in between (seen once in the poison fault test: the letter had lost its fields)."""
    c = api.container
    stream = RedisChangeStream(c.redis, c.scripts, c.keys)
    same_id = "1700000000000-0"
    for shard, rid in ((0, "poison"), (1, "good")):
        await stream.prepare(shard)
        await c.redis.xadd(c.keys.stream(shard), {**_poison(uuid.uuid4()), "rid": rid}, id=same_id)
    first, second = [await stream.acquire(shard, "eater", 10_000) for shard in (0, 1)]
    assert first is not None and second is not None
    (poisoned,) = await stream.read(first, 10, backlog=False, block_ms=100)
    (other,) = await stream.read(second, 10, backlog=False, block_ms=100)
    assert poisoned.id == other.id == same_id
    await stream.ack(1, [other])
    await stream.dead_letter(0, poisoned, "ForeignKeyViolation")
    (letter,) = await stream.dead_letters(0)
    assert letter["rid"] == "poison" and letter["source_id"] == same_id
    assert letter["s"] == str(poisoned.section_id)


async def test_workers_share_the_shards_and_take_over_a_stopped_one(api: Api) -> None:
    one = make_persister(api.container, "w1")
    two = make_persister(api.container, "w2")
    stop_one, stop_two = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(one.run(stop_one)), asyncio.create_task(two.run(stop_two))]
    shards = api.container.keys.shards
    try:

        def shared() -> bool:
            balanced = abs(len(one.owned) - len(two.owned)) <= 1
            return len(one.owned) + len(two.owned) == shards and balanced

        await wait_until(shared, 10, "the two workers share the shards")
        assert sorted(one.owned + two.owned) == list(range(shards))
        stop_one.set()
        await tasks[0]
        await wait_until(lambda: len(two.owned) == shards, 10, "the other worker owns them all")
        assert two.owned == list(range(shards))
    finally:
        stop_one.set()
        stop_two.set()
        await asyncio.gather(*tasks)


def test_change_positions_order_like_stream_ids() -> None:
    ids = ["1700000000000-3", "1700000000001-0", "1700000000000-12"]
    assert sorted(ids, key=parse_position) == [
        "1700000000000-3",
        "1700000000000-12",
        "1700000000001-0",
    ]
    assert ChangeKind.PROMOTE.value == "promote"
