"""Rate limits on register and drop: per student and per client address, in this process.

Token buckets written here rather than taken from `limits`: its in-memory storage starts a
timer thread to expire keys (one every 10 ms under load) and takes a lock per key, while a
bucket on the event loop needs neither and costs the hot path no Redis round trip. The price:
limits are per API process, so N replicas admit up to N times the configured rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from domain.errors import RateLimited
from domain.model import Actor, Role
from infrastructure.settings import Settings

MAX_KEYS = 200_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class TokenBuckets:
    """`rate` tokens a second up to `burst`, one bucket per key. The least recently used
    buckets are forgotten past `max_keys` (a forgotten bucket is a full one)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 if a token was taken; else the seconds until one will be there."""
        now = self.clock()
        bucket = self._buckets.pop(key, None)  # re-inserted last: dict order is recency
        if bucket is None:
            bucket = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        wait = 0.0
        if bucket.tokens >= 1:
            bucket.tokens -= 1
        else:
            wait = (1 - bucket.tokens) / self.rate
        self._buckets[key] = bucket
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
        return wait


class RequestThrottle:
    """The Throttle of resolvers/context.py: refuses with RATE_LIMITED and `retryAfter`
    (seconds) when a student (by their token) or an address asks too often. Staff act for
    many students, so only their address is limited."""

    def __init__(self, settings: Settings) -> None:
        self.students = self._buckets(settings.rate_student, settings.rate_student_burst)
        self.addresses = self._buckets(settings.rate_ip, settings.rate_ip_burst)

    @staticmethod
    def _buckets(rate: float, burst: int) -> TokenBuckets | None:
        return TokenBuckets(rate, burst) if rate > 0 else None

    def admit(self, actor: Actor, address: str | None) -> None:
        if self.addresses is not None and address:
            self._check(self.addresses, address, "this address")
        if self.students is not None and actor.role is Role.STUDENT:
            self._check(self.students, actor.subject, "this student")

    @staticmethod
    def _check(buckets: TokenBuckets, key: str, who: str) -> None:
        wait = buckets.take(key)
        if wait > 0:
            retry_after = math.ceil(wait * 1000) / 1000
            raise RateLimited(
                f"too many register and drop requests from {who}; retry in {retry_after:g} s",
                retryAfter=retry_after,
            )
