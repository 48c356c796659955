"""The rate limits' token buckets in Redis (bucket.lua, redis/buckets.py, ratelimit.py):
the burst, the refill and its retryAfter, the cap at the burst, expiry once full, both
buckets of a request or neither, and one bucket for every API process (two throttles, as
two processes have, take from the same).
Most tests move a clock of their own; one runs on Redis's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from domain.errors import RateLimited
from domain.model import Actor, Role
from infrastructure.container import make_redis
from infrastructure.ratelimit import RequestThrottle
from infrastructure.redis.buckets import Limit, RedisBuckets
from infrastructure.redis.keys import Keys
from infrastructure.redis.scripts import Scripts
from infrastructure.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1_765_000_000.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def scripts(settings: Settings) -> AsyncIterator[Scripts]:
    redis = make_redis(settings)
    assert isinstance(redis, Redis)  # one server's client: this module's Redis
    try:
        yield Scripts(redis)
    finally:
        async for key in redis.scan_iter(match=f"{settings.key_prefix}*", count=10_000):
            await redis.delete(key)
        await redis.aclose(close_connection_pool=True)


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return Keys(settings.key_prefix, settings.shards)


def student() -> Actor:
    return Actor(str(uuid.uuid4()), Role.STUDENT)


async def take(buckets: RedisBuckets, key: str, limit: Limit) -> float:
    (wait,) = await buckets.take([(key, limit)])
    return wait


async def test_a_bucket_admits_its_burst_then_one_per_refill_and_says_when(
    scripts: Scripts, keys: Keys
) -> None:
    clock = Clock()
    buckets = RedisBuckets(scripts, clock)
    key, limit = keys.student_bucket(student().subject), Limit(2.0, 3)
    assert [await take(buckets, key, limit) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await take(buckets, key, limit) == pytest.approx(0.5)
    clock.now += 0.25
    assert await take(buckets, key, limit) == pytest.approx(0.25), "a refusal spends nothing"
    clock.now += 0.25
    assert await take(buckets, key, limit) == 0.0
    assert await take(buckets, key, limit) == pytest.approx(0.5)
    other = keys.student_bucket(student().subject)
    assert await take(buckets, other, limit) == 0.0, "every key has its own bucket"


async def test_a_bucket_never_holds_more_than_its_burst_and_is_gone_once_full(
    scripts: Scripts, keys: Keys
) -> None:
    clock = Clock()
    buckets = RedisBuckets(scripts, clock)
    key, limit = keys.address_bucket("10.0.0.1"), Limit(10.0, 2)
    await take(buckets, key, limit)
    # one token short of the burst: full again in 0.1 s, so it lives 0.1 s + 1 s
    assert 1000 < await scripts.redis.pttl(key) <= 1100
    clock.now += 3600
    assert [await take(buckets, key, limit) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.1)]
    assert 1000 < await scripts.redis.pttl(key) <= 1200


@pytest.mark.parametrize("one_call", [True, False], ids=["one-server", "cluster-calls"])
async def test_a_take_of_two_buckets_takes_from_both_or_from_neither(
    scripts: Scripts, keys: Keys, one_call: bool
) -> None:
    """One server: one script call, all or nothing. A cluster (the buckets in different
    slots): a call per bucket, and the token of one that admitted is given back."""
    clock = Clock()
    buckets = RedisBuckets(scripts, clock, one_call=one_call)
    roomy = (keys.address_bucket("10.0.0.1"), Limit(0.001, 5))
    scarce = (keys.student_bucket(student().subject), Limit(0.001, 1))
    assert await buckets.take([roomy, scarce]) == [0.0, 0.0]
    waits = await buckets.take([roomy, scarce])
    assert waits == [0.0, pytest.approx(1000)]
    # 4 left in the roomy bucket: the refused take spent none
    assert [await take(buckets, *roomy) for _ in range(5)] == [0, 0, 0, 0, pytest.approx(1000)]


async def test_on_redis_clock_the_bucket_refills_with_time(scripts: Scripts, keys: Keys) -> None:
    buckets = RedisBuckets(scripts)
    key, limit = keys.student_bucket(student().subject), Limit(20.0, 2)
    assert [await take(buckets, key, limit) for _ in range(2)] == [0.0, 0.0]
    wait = await take(buckets, key, limit)
    assert 0 < wait <= 0.05
    await asyncio.sleep(wait + 0.02)
    assert await take(buckets, key, limit) == 0.0


def throttle(
    settings: Settings,
    scripts: Scripts,
    keys: Keys,
    limits: dict[str, float],
    one_call: bool = True,
) -> RequestThrottle:
    buckets = RedisBuckets(scripts, one_call=one_call)
    return RequestThrottle(settings.model_copy(update=limits), buckets, keys)


async def test_two_processes_throttles_take_from_one_bucket(
    settings: Settings, scripts: Scripts, keys: Keys
) -> None:
    """What two API processes hold: the burst is for both together, not each."""
    limits = {"rate_student": 0.001, "rate_student_burst": 3, "rate_ip": 0}
    a, b = throttle(settings, scripts, keys, limits), throttle(settings, scripts, keys, limits)
    actor, refused = student(), 0
    for i in range(7):
        try:
            await (a if i % 2 else b).admit(actor, "10.0.0.1")
        except RateLimited as exc:
            refused += 1
            assert "this student" in exc.message
            assert exc.extensions["retryAfter"] > 0
    assert refused == 4


async def test_students_are_limited_by_their_token_and_staff_only_by_address(
    settings: Settings, scripts: Scripts, keys: Keys
) -> None:
    limits = {"rate_student": 0.001, "rate_student_burst": 1, "rate_ip": 0}
    limited = throttle(settings, scripts, keys, limits)
    actor, staff = student(), Actor("staff-1", Role.STAFF)
    await limited.admit(actor, "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        await limited.admit(actor, "10.0.0.2")
    assert refused.value.extensions["retryAfter"] > 0
    for _ in range(50):
        await limited.admit(staff, "10.0.0.1")


@pytest.mark.parametrize("one_call", [True, False], ids=["one-server", "cluster-calls"])
async def test_a_request_refused_by_one_limit_spends_no_token_of_the_other(
    settings: Settings, scripts: Scripts, keys: Keys, one_call: bool
) -> None:
    limits = {"rate_student": 0.001, "rate_student_burst": 1, "rate_ip": 0.001, "rate_ip_burst": 2}
    limited = throttle(settings, scripts, keys, limits, one_call)
    actor, staff = student(), Actor("staff-1", Role.STAFF)
    await limited.admit(actor, "10.0.0.1")  # the address has 1 token left
    with pytest.raises(RateLimited, match="this student"):
        await limited.admit(actor, "10.0.0.1")  # spends no address token
    await limited.admit(staff, "10.0.0.1")
    with pytest.raises(RateLimited, match="this address"):
        await limited.admit(staff, "10.0.0.1")
    other = student()
    with pytest.raises(RateLimited, match="this address"):
        await limited.admit(other, "10.0.0.1")  # and no student token
    await limited.admit(other, "10.0.0.2")


async def test_a_rate_of_zero_turns_the_limit_off(
    settings: Settings, scripts: Scripts, keys: Keys
) -> None:
    off = throttle(settings, scripts, keys, {"rate_student": 0, "rate_ip": 0})
    actor = student()
    for _ in range(1000):
        await off.admit(actor, "10.0.0.1")
    assert not [k async for k in scripts.redis.scan_iter(match=f"{keys.prefix}*")]
