"""Token buckets in Redis (bucket.lua): every API process takes from the same buckets, so
a rate limit holds for the whole deployment, not per process."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import Call, ScriptArg, Scripts


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` tokens a second (> 0), at most `burst` saved up."""

    rate: float
    burst: int


@unavailable_when_down
class RedisBuckets:
    """`clock` (epoch seconds) for tests that move time; by default the buckets run on
    Redis's own clock, the one every process shares."""

    def __init__(self, scripts: Scripts, clock: Callable[[], float] | None = None) -> None:
        self._scripts = scripts
        self._clock = clock

    async def take(self, buckets: Sequence[tuple[str, Limit]]) -> list[float]:
        """A token from each bucket, all in one round trip (shared with the other requests of
        this event-loop turn: scripts.Coalescer). Each reply: 0 when taken, else the seconds
        until that bucket has a token (it was left as it was)."""
        calls = [self._call(key, limit, 1) for key, limit in buckets]
        return [float(reply) for reply in await self._scripts.coalesced.run(calls)]

    async def give_back(self, buckets: Sequence[tuple[str, Limit]]) -> None:
        """A token back to each bucket (never past its burst): a request refused by another
        limit spends none."""
        await self._scripts.coalesced.run([self._call(key, limit, -1) for key, limit in buckets])

    def _call(self, key: str, limit: Limit, cost: int) -> Call:
        args: list[ScriptArg] = [repr(float(limit.rate)), limit.burst, cost]
        if self._clock is not None:
            now = self._clock()
            seconds = math.floor(now)
            args += [seconds, round((now - seconds) * 1_000_000)]
        return Call(self._scripts.bucket, [key], args)
