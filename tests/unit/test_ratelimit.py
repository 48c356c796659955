"""Token buckets of the register/drop rate limits, on a clock the test moves."""

from __future__ import annotations

import pytest

from domain.errors import RateLimited
from domain.model import Actor, Role
from infrastructure.ratelimit import RequestThrottle, TokenBuckets
from infrastructure.settings import load_settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_admits_its_burst_then_one_per_refill_and_says_when() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert buckets.take("a") == pytest.approx(0.25), "a refused take spends nothing"
    clock.now += 0.25
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0, "every key has its own bucket"


def test_a_bucket_never_holds_more_than_its_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10.0, burst=2, clock=clock)
    buckets.take("a")
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)][-1] > 0


def test_the_least_recently_used_buckets_are_forgotten_past_the_cap() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, max_keys=2, clock=clock)
    buckets.take("old")
    buckets.take("mid")
    buckets.take("old")  # refused, and now the most recent
    buckets.take("new")  # three keys: the least recently used, "mid", goes
    assert buckets.take("old") > 0, "remembered: still empty"
    assert buckets.take("mid") == 0.0, "forgotten, so full again"


def _throttle(**overrides: object) -> RequestThrottle:
    settings = load_settings(
        database_url="postgresql://u@h/d", redis_url="redis://h:1/0", **overrides
    )
    return RequestThrottle(settings)


def test_students_are_limited_by_their_token_and_staff_only_by_address() -> None:
    throttle = _throttle(rate_student=0.001, rate_student_burst=1, rate_ip=0)
    student = Actor("5a1d6c1e-0000-4000-8000-000000000001", Role.STUDENT)
    staff = Actor("staff-1", Role.STAFF)
    throttle.admit(student, "10.0.0.1")
    with pytest.raises(RateLimited) as refused:
        throttle.admit(student, "10.0.0.2")
    assert refused.value.extensions["retryAfter"] > 0
    for _ in range(50):
        throttle.admit(staff, "10.0.0.1")


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    throttle = _throttle(rate_student=0, rate_ip=0)
    student = Actor("5a1d6c1e-0000-4000-8000-000000000001", Role.STUDENT)
    for _ in range(1000):
        throttle.admit(student, "10.0.0.1")
