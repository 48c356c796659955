"""Redis Cluster slot safety without a server: every KEYS list the adapters build for a script,
and every MULTI they send, hashes to one slot (redis-py's key_slot), for any ids, key prefix
and shard count. The adapters run against a recorder that keeps what they send and stops
them there; tests/integration/test_cluster.py runs the same paths on a real cluster."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Any, cast
from uuid import UUID

import pytest
from redis.crc import key_slot

from domain.leases import Lease
from domain.model import RegisterAnswer, SectionSetup
from domain.rules import (
    Attempt,
    HeldSection,
    Holding,
    Meeting,
    Rejection,
    SectionRules,
    StudentRules,
    WaitlistMode,
)
from infrastructure.postgres.snapshot import PostgresSnapshot
from infrastructure.redis.buckets import Limit, RedisBuckets
from infrastructure.redis.client import RedisClient
from infrastructure.redis.idempotency import RedisIdempotencyStore
from infrastructure.redis.keys import Keys
from infrastructure.redis.pending import RedisPendingChanges
from infrastructure.redis.rules import RedisRuleStore
from infrastructure.redis.scripts import Scripts
from infrastructure.redis.seats import RedisSeatStore
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.redis.students import CachedStudentDirectory
from infrastructure.settings import SettingsError, load_settings
from infrastructure.state.recovery import StateLoader

NOW = datetime(2026, 9, 1, tzinfo=UTC)


class Sent(Exception):
    """The recorder has what it wanted (the keys); the adapter stops here."""


@dataclass
class Recorder:
    """A stand-in Redis client: records the KEYS of each script call and the keys of each
    MULTI, then fails it with Sent. Plain pipelines without a script answer None."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    multis: list[list[str]] = field(default_factory=list)

    def register_script(self, source: str) -> RecordedScript:
        return RecordedScript(self, sha1(source.encode()).hexdigest())

    def pipeline(self, transaction: bool = True) -> RecordedPipe:
        return RecordedPipe(self, transaction)

    async def hkeys(self, key: str) -> list[str]:
        return []


@dataclass
class RecordedScript:
    recorder: Recorder
    sha: str

    async def __call__(self, keys: list[str], args: list[Any]) -> Any:
        self.recorder.calls.append((self.sha, list(keys)))
        raise Sent


@dataclass
class RecordedPipe:
    recorder: Recorder
    transaction: bool
    queued: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def execute_command(self, *args: Any) -> RecordedPipe:
        self.queued.append((str(args[0]).upper(), args[1:]))
        return self

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> RecordedPipe:
            return self.execute_command(name, *args)

        return queue

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        if self.transaction:
            self.recorder.multis.append([str(args[0]) for _, args in self.queued])
            raise Sent
        scripts = [args for name, args in self.queued if name == "EVALSHA"]
        for sha, count, *rest in scripts:
            self.recorder.calls.append((sha, [str(k) for k in rest[: int(count)]]))
        # As a pipeline run with raise_on_error=False hands back a failed command's error.
        return [Sent() if scripts else None for _ in self.queued]


class EmptySnapshot:
    """What StateLoader.load reads from Postgres: nobody enrolled, waiting or offered."""

    async def enrolled(self, ids: Any, semesters: Any = None) -> dict[UUID, list[UUID]]:
        return {}

    async def waitlists(self, ids: Any) -> dict[UUID, list[tuple[int, UUID]]]:
        return {}

    async def offers(self, ids: Any) -> dict[UUID, list[tuple[UUID, datetime]]]:
        return {}


def _ids(rng: random.Random, count: int) -> list[UUID]:
    return [UUID(int=rng.getrandbits(128), version=4) for _ in range(count)]


def _setup(section_id: UUID, semester_id: UUID, rng: random.Random) -> SectionSetup:
    course, linked = _ids(rng, 2)
    rules = SectionRules(
        course_id=course,
        semester_id=semester_id,
        meetings=(Meeting(("MON", "WED"), "09:00", "10:15"),),
        linked_sections=(linked,),
        waitlist_mode=WaitlistMode.OFFER,
    )
    return SectionSetup(section_id, 30, True, NOW, NOW + timedelta(days=30), 1, rules)


async def _record(recorder: Recorder, work: Any) -> None:
    with pytest.raises(Sent):
        await work


def _one_slot(keys: list[str]) -> bool:
    return len({key_slot(k.encode()) for k in keys}) == 1


@pytest.mark.parametrize(
    ("prefix", "shards"), [("", 1), ("t0a1b2c3:", 4), ("prod:coursereg:", 16), ("x:", 1024)]
)
async def test_every_script_call_and_multi_of_the_adapters_is_in_one_slot(
    prefix: str, shards: int
) -> None:
    rng = random.Random(f"{prefix}{shards}")
    keys = Keys(prefix, shards)
    recorder = Recorder()
    # The stand-ins answer only what these adapters call, which the test is about.
    client = cast(RedisClient, recorder)
    snapshot = cast(PostgresSnapshot, EmptySnapshot())
    scripts = Scripts(client)
    seats = RedisSeatStore(client, scripts, keys)
    rules = RedisRuleStore(client, scripts, keys, 18.0)
    idempotency = RedisIdempotencyStore(client, scripts, keys)
    stream = RedisChangeStream(client, scripts, keys)
    pending = RedisPendingChanges(client, scripts, keys)
    students = CachedStudentDirectory(client, keys)
    loader = StateLoader(client, scripts, keys, snapshot, students, stream, rules)
    buckets = RedisBuckets(scripts, one_call=False)  # as on a cluster (a RedisCluster client)
    for _ in range(25):
        student, other_semester, *sections = _ids(rng, 7)
        semester = _ids(rng, 1)[0]
        setups = [_setup(s, semester, rng) for s in sections[:3]]
        setups.append(_setup(sections[3], other_semester, rng))
        held = [
            HeldSection(s.section_id, s.rules, Holding.ENROLLED)
            for s in setups[:2]
            if s.rules is not None
        ]
        attempt = Attempt(student, sections[0], Rejection.TIME_CONFLICT)
        lease = Lease(rng.randrange(shards), "worker-1", 7, "worker-1#7")
        work = [
            seats.register(student, sections, "r1", "op1", 0, sections[4]),
            seats.drop(student, sections[:2], "r2", True, "op2", 5),
            seats.set_capacity(sections[0], 10, "r3", True),
            seats.resolve(student, sections[1], "claim", "", "r4", "op4", 5),
            seats.open_section(setups[0]),
            seats.standing(student, sections[2]),
            rules.reserve(student, setups, sections, "op5", swap_from=sections[3]),
            rules.settle(
                student,
                [(setups[0], Holding.ENROLLED), (setups[3], None)],
                "op6",
                indexed=setups,
                attempts=[attempt],
                request_id="r6",
            ),
            rules.leave(student, setups[0], "op7"),
            rules.forget(student, semester, [sections[1]], "D", "op8", [setups[1]]),
            rules.confirm_promotion(student, setups[2], "op9"),
            rules.mirror(
                StudentRules(student, 1, 18.0, {semester: (NOW, NOW)}, frozenset(sections))
            ),
            rules.load(StudentRules(student), {semester: held, other_semester: []}, "g1"),
            rules.refresh_holdings(setups[0], [student, other_semester]),
            idempotency.begin(student, "key-1", "fingerprint"),
            idempotency.finish(student, "key-1", "fingerprint", RegisterAnswer(student, ())),
            stream.acquire(lease.shard, "worker-1", 10_000, above=3),
            stream.renew(lease, 10_000),
            stream.release(lease),
            stream.adopt(lease),
            stream.read(lease, 100, backlog=False, block_ms=0),
            loader.load(setups),
            pending.of_students([student, other_semester]),
            buckets.take(
                [
                    (keys.address_bucket("2001:db8::1"), Limit(2000.0, 4000)),
                    (keys.student_bucket(str(student)), Limit(10.0, 30)),
                ]
            ),
        ]
        for call in work:
            await _record(recorder, call)

    names = {getattr(scripts, n).sha: n for n in Scripts.NAMES}
    ran = {names[sha] for sha, _ in recorder.calls}
    assert ran == set(Scripts.NAMES), set(Scripts.NAMES) - ran
    crossing = [(names[sha], k) for sha, k in recorder.calls if not _one_slot(k)]
    assert not crossing, crossing
    assert len(recorder.multis) == 25  # standing's consistent read
    assert all(_one_slot(k) for k in recorder.multis), recorder.multis


def test_a_key_prefix_with_a_brace_is_refused() -> None:
    """A brace in the prefix would become every key's hash tag and split a section's keys
    from its shard's stream across slots."""
    for bad in ("a{b}:", "x{", "}y"):
        with pytest.raises(SettingsError, match="COURSEREG_KEY_PREFIX"):
            load_settings(key_prefix=bad, redis_url="redis://127.0.0.1:6379/0")
