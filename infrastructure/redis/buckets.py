"""Token buckets in Redis (bucket.lua): every API process takes from the same buckets, so
a rate limit holds for the whole deployment, not per process."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio.cluster import RedisCluster

from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import Call, ScriptArg, Scripts

Bucket = tuple[str, "Limit"]


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` tokens a second (> 0), at most `burst` saved up."""

    rate: float
    burst: int


@unavailable_when_down
class RedisBuckets:
    """`clock` (epoch seconds) for tests that move time; by default the buckets run on
    Redis's own clock, the one every process shares. `one_call`: every bucket of a take in
    one script call (one server); else one call per bucket (a Redis Cluster, where they
    are in different slots). By default: whether the client is a cluster's."""

    def __init__(
        self,
        scripts: Scripts,
        clock: Callable[[], float] | None = None,
        one_call: bool | None = None,
    ) -> None:
        self._scripts = scripts
        self._clock = clock
        self._one_call = (
            not isinstance(scripts.redis, RedisCluster) if one_call is None else one_call
        )

    async def take(self, buckets: Sequence[Bucket]) -> list[float]:
        """A token from every bucket, or from none, in one round trip (shared with the other
        requests of this event-loop turn: scripts.Coalescer). Each reply: 0 when its token
        could be had, else the seconds until it can. On a cluster the buckets are taken one
        by one in that round trip, and when any refused, the others' tokens are given back
        (a second round trip, only then)."""
        run = self._scripts.coalesced.run
        if self._one_call or len(buckets) == 1:
            (waits,) = await run([self._call(buckets, 1)])
            return [float(wait) for wait in waits]
        waits = [float(reply[0]) for reply in await run([self._call([b], 1) for b in buckets])]
        if any(waits):
            await run(
                [self._call([b], -1) for b, wait in zip(buckets, waits, strict=True) if not wait]
            )
        return waits

    def _call(self, buckets: Sequence[Bucket], cost: int) -> Call:
        args: list[ScriptArg] = [cost]
        for _, limit in buckets:
            args += [repr(float(limit.rate)), limit.burst]
        if self._clock is not None:
            now = self._clock()
            seconds = math.floor(now)
            args += [seconds, round((now - seconds) * 1_000_000)]
        return Call(self._scripts.bucket, [key for key, _ in buckets], args)
