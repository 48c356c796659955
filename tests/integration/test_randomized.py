"""A seeded random mix of register, drop, capacity changes and idempotent replays from many
concurrent clients; then the five invariants, in Redis and (after draining) in Postgres."""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import pytest

from infrastructure.container import Container
from tests.client import CAPACITY, DROP, REGISTER
from tests.conftest import Api, Catalog, Worker
from tests.invariants import Answers, check_answers_persisted, check_postgres, check_redis
from tests.waiting import wait_until

SEEDS = [int(s) for s in os.environ.get("RANDOM_SEEDS", "1,2").split(",")]


class EventLog:
    """Every event published for the sections, to replay the waitlists and prove FIFO."""

    def __init__(self) -> None:
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.began: dict[str, int] = {}  # each section's version once the log listens

    async def begin(self, container: Container, section_ids: Sequence[uuid.UUID]) -> None:
        """Note each section's version, once subscribed: every later one reaches the log."""
        self.began = {str(s): await version(container, s) for s in section_ids}

    async def complete(self, container: Container) -> bool:
        """Whether the log holds every section's events up to its current version."""
        for section, began in self.began.items():
            logged = max((e["v"] for e in self.events.get(section, [])), default=began)
            if logged < await version(container, uuid.UUID(section)):
                return False
        return True

    async def completed(self, container: Container) -> None:
        """Wait until the events of every change made so far have reached the log."""
        await wait_until(partial(self.complete, container), 10, "every event in the log")

    async def listen(self, api: Api, section_ids: list[uuid.UUID], ready: asyncio.Event) -> None:
        pubsub = api.container.redis.pubsub()
        await pubsub.subscribe(*(api.container.keys.section_channel(s) for s in section_ids))
        confirmed = 0
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    confirmed += 1
                    if confirmed == len(section_ids):
                        await self.begin(api.container, section_ids)
                        ready.set()
                elif message["type"] == "message":
                    event = json.loads(message["data"])
                    self.events.setdefault(event["s"], []).append(event)
        finally:
            await pubsub.aclose()

    def check_fifo(self) -> int:
        """Replay each section's events in version order. A freed seat must go to the first
        student in line not already holding one: enrolled at once (p), or held for them
        pending their rules check (q) or as an offer (o); a claim (e) or a removal takes
        that student out of the line. Returns the number of seats handed over."""
        handed = 0
        for section, events in self.events.items():
            events.sort(key=lambda e: e["v"])
            versions = [e["v"] for e in events]
            assert versions == list(range(versions[0], versions[0] + len(versions))), (
                f"events of {section} are not contiguous: none may be missing"
            )
            assert versions[0] <= self.began[section] + 1, f"first events of {section} missing"
            line: list[str] = []
            holding: set[str] = set()
            for e in events:
                if e["k"] == "join":
                    line.append(e["u"])
                elif e["k"] in ("leave", "claim", "skip", "decline", "expire"):
                    assert line.index(e["u"]) + 1 == e["r"], "the rank that left is reported"
                    line.remove(e["u"])
                    holding.discard(e["u"])
                promoted = e.get("p") or []
                assert promoted == line[: len(promoted)], f"FIFO broken in {section}: {e}"
                del line[: len(promoted)]
                for new in (e.get("q") or []) + (e.get("o") or []):
                    first_free = next(s for s in line if s not in holding)
                    assert new == first_free, f"FIFO broken in {section}: {e}"
                    holding.add(new)
                handed += len(promoted) + len(e.get("q") or []) + len(e.get("o") or [])
                assert e["w"] == len(line)
        return handed


async def version(container: Container, section: uuid.UUID) -> int:
    return int(await container.redis.hget(container.keys.section(section).meta, "version") or 0)


async def answered(send: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """The answer, retried as a client does while it is "try again" (UNAVAILABLE: e.g. a
    section the student holds while a promotion skips them off its line, docs/holdings.md)."""
    for _ in range(50):
        body = await send()
        if body.get("data") is not None:
            return body
        assert body["errors"][0]["extensions"]["code"] == "UNAVAILABLE", body
        await asyncio.sleep(0.05)
    raise AssertionError(f"still UNAVAILABLE: {body}")


@pytest.mark.parametrize("seed", SEEDS)
async def test_random_mix_keeps_every_invariant(
    api: Api, catalog: Catalog, worker: Worker, settings, seed: int
) -> None:
    """Invariants: no oversell, FIFO, nothing acknowledged lost, convergence, one place."""
    rng = random.Random(seed)
    sections = [await catalog.section(seats=rng.randint(2, 6)) for _ in range(5)]
    students = await catalog.students(50)
    ids = [s.id for s in sections]
    log, ready = EventLog(), asyncio.Event()
    listener = asyncio.create_task(log.listen(api, ids, ready))
    await ready.wait()
    answers = Answers()
    replays = 0

    async def client(n: int) -> None:
        nonlocal replays
        me = random.Random(seed * 1000 + n)
        student = students[n]
        token = api.student_token(student.id)
        sent: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for _ in range(12):
            roll = me.random()
            if roll < 0.5:
                chosen = me.sample(ids, me.randint(1, 3))
                i = {
                    "studentId": str(student.id),
                    "sectionIds": [str(s) for s in chosen],
                    "idempotencyKey": uuid.uuid4().hex,
                }
                body = await answered(partial(api.gql, REGISTER, token, i=i))
                for r in body["data"]["register"]["results"]:
                    answers.record(student.id, uuid.UUID(r["sectionId"]), r["outcome"])
                sent.append((i, body))
            elif roll < 0.8:
                section = me.choice(ids)
                body = await api.gql(
                    DROP, token, i={"studentId": str(student.id), "sectionId": str(section)}
                )
                answers.record(student.id, section, body["data"]["drop"]["outcome"])
            elif roll < 0.9 and sent:
                i, first = me.choice(sent)
                assert await api.gql(REGISTER, token, i=i) == first, "a replay answers the same"
                replays += 1
            else:
                section = me.choice(ids)
                body = await api.gql(CAPACITY, api.token(), s=str(section), n=me.randint(1, 9))
                if "errors" in body:
                    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            await check_redis(api.container, ids)

    await asyncio.gather(*(client(n) for n in range(len(students))))
    await log.completed(api.container)
    listener.cancel()
    await asyncio.gather(listener, return_exceptions=True)
    redis = await check_redis(api.container, ids)
    promotions = log.check_fifo()  # seats handed down the line, in order
    await worker.drain()
    pg = await check_postgres(api.container, settings.database_url, ids)
    persisted = await check_answers_persisted(settings.database_url, answers)
    print(
        f"\nseed={seed} answers={answers.count} replays={replays} promotions={promotions} "
        f"lost={persisted['lost']} oversold={redis['oversold'] + pg['oversold']} "
        f"duplicates={redis['duplicates'] + pg['duplicates']}"
    )
