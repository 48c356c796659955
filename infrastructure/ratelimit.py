"""Rate limits on register and drop: per student and per client address, for the whole
deployment.

The buckets are in Redis (redis/buckets.py, bucket.lua), shared by every API process: N
processes or replicas admit the configured rate in total, not N times it. The price is one
Redis round trip per limited request, pipelined with the other requests of the same
event-loop turn (scripts.Coalescer): on one server both buckets in one script call, taken
together or not at all. A student's bucket is in the student's slot, so a later step can
take its token inside the student's own first script instead.
"""

from __future__ import annotations

import math

from domain.errors import RateLimited
from domain.model import Actor, Role
from infrastructure.redis.buckets import Limit, RedisBuckets
from infrastructure.redis.keys import Keys
from infrastructure.settings import Settings


class RequestThrottle:
    """The Throttle of resolvers/context.py: refuses with RATE_LIMITED and `retryAfter`
    (seconds) when a student (by their token) or an address asks too often. Staff act for
    many students, so only their address is limited. A refused request spends no token of
    either limit."""

    def __init__(self, settings: Settings, buckets: RedisBuckets, keys: Keys) -> None:
        self.buckets = buckets
        self.keys = keys
        self.students = self._limit(settings.rate_student, settings.rate_student_burst)
        self.addresses = self._limit(settings.rate_ip, settings.rate_ip_burst)

    @staticmethod
    def _limit(rate: float, burst: int) -> Limit | None:
        return Limit(rate, burst) if rate > 0 else None

    async def admit(self, actor: Actor, address: str | None) -> None:
        wanted: list[tuple[str, Limit, str]] = []
        if self.addresses is not None and address:
            wanted.append((self.keys.address_bucket(address), self.addresses, "this address"))
        if self.students is not None and actor.role is Role.STUDENT:
            key = self.keys.student_bucket(actor.subject)
            wanted.append((key, self.students, "this student"))
        if not wanted:
            return
        waits = await self.buckets.take([(key, limit) for key, limit, _ in wanted])
        refused = [(wait, who) for wait, (_, _, who) in zip(waits, wanted, strict=True) if wait]
        if not refused:
            return
        wait, who = refused[0]  # the address first, as it is checked first
        retry_after = math.ceil(wait * 1000) / 1000
        raise RateLimited(
            f"too many register and drop requests from {who}; retry in {retry_after:g} s",
            retryAfter=retry_after,
        )
