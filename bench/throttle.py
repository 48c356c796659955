"""`python -m bench.throttle`: what the deployment-wide rate limits cost a request, in
process: RequestThrottle.admit (both buckets, one pipelined round trip to REDIS_URL) one
request at a time (the latency a request adds) and from many concurrent requests (the API
CPU per request when the round trips are shared, as at the rush). Every admit is a
different student's from a different address (both buckets taken, as for a student's
request in production), so none is refused; a key prefix of its own, deleted after."""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time
import uuid

from redis.asyncio import Redis

from domain.model import Actor, Role
from infrastructure.container import make_redis
from infrastructure.ratelimit import RequestThrottle
from infrastructure.redis.buckets import RedisBuckets
from infrastructure.redis.keys import Keys
from infrastructure.redis.scripts import Scripts
from infrastructure.settings import load_settings


def address(i: int) -> str:
    return f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(sequential: int, concurrent: int, tasks: int) -> None:
    prefix = f"benchthrottle{uuid.uuid4().hex[:8]}:"
    settings = load_settings(
        database_url="postgresql://unused@127.0.0.1/unused",
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        key_prefix=prefix,
    )
    redis = make_redis(settings)
    assert isinstance(redis, Redis)  # one server's client: this module's Redis
    keys = Keys(prefix, settings.shards)
    throttle = RequestThrottle(settings, RedisBuckets(Scripts(redis)), keys)
    count = max(sequential, concurrent)
    actors = [(Actor(str(uuid.uuid4()), Role.STUDENT), address(i)) for i in range(count)]
    try:
        for actor, _ in actors[:100]:  # warm: scripts loaded, pool connections open
            await throttle.admit(actor, "192.0.2.1")

        started, used = time.perf_counter(), cpu()
        for actor, at in actors[:sequential]:
            await throttle.admit(actor, at)
        wall, spent = time.perf_counter() - started, cpu() - used
        print(
            f"one at a time: {wall / sequential * 1e6:.0f} us a request "
            f"(API CPU {spent / sequential * 1e6:.0f} us), {sequential} requests"
        )

        queue = iter(actors[:concurrent])

        async def client() -> None:
            for actor, at in queue:
                await throttle.admit(actor, at)

        started, used = time.perf_counter(), cpu()
        await asyncio.gather(*(client() for _ in range(tasks)))
        wall, spent = time.perf_counter() - started, cpu() - used
        print(
            f"{tasks} concurrent: {concurrent / wall:,.0f} requests/s, "
            f"API CPU {spent / concurrent * 1e6:.0f} us a request, {concurrent} requests"
        )
    finally:
        async for key in redis.scan_iter(match=f"{prefix}*", count=10_000):
            await redis.delete(key)
        await redis.aclose(close_connection_pool=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.throttle")
    p.add_argument("--sequential", type=int, default=5_000)
    p.add_argument("--concurrent", type=int, default=50_000)
    p.add_argument("--tasks", type=int, default=200)
    args = p.parse_args()
    asyncio.run(measure(args.sequential, args.concurrent, args.tasks))


if __name__ == "__main__":
    main()
