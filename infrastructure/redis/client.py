"""The process's Redis client: one server's pool, or redis-py's cluster client when the server
REDIS_URL names runs in cluster mode. That URL (any node of a cluster) is the whole
configuration: each process asks the server at start (`INFO cluster`) and picks the client.

The adapters take either. On a cluster every script call and every MULTI stays within one
hash slot (keys.py), pipelines are split per node by the client, and a command of several
keys of different slots (DEL, EXISTS) is split by slot too; MGET/MSET are not used."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeAlias, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RedisClient: TypeAlias = Redis | RedisCluster
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline

PROBE_RETRY_SECONDS = 1.0
CONNECTION_HEADROOM = 16
T = TypeVar("T")


def _retry(retries: int) -> Retry:
    # redis-py re-sends a whole command or pipeline whose reply was lost (it cannot tell a
    # lost reply from a lost request), so every write sent through this client must be safe
    # to repeat: the saga's scripts remember their reply per operation (lib/once.lua), the
    # holdings move by compare-and-set, begin.lua recognizes its own token, answer.lua its
    # own answer; tests/integration/test_lost_replies.py cuts replies to prove it.
    return Retry(ExponentialWithJitterBackoff(cap=0.5, base=0.05), retries)


def node_client(url: str, retries: int, connections: int) -> Redis:
    """One server (or one node of a cluster, for pub/sub)."""
    # A blocking pool: at the rush, requests queue for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        max_connections=connections,
        timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        # A pool given to Redis() has no retries by default: after a Redis restart every
        # pooled connection would fail once.
        retry=_retry(retries),
    )
    return Redis(connection_pool=pool)


# Whether this task already holds a turn of its cluster client (a pipeline's redirected
# command goes through the client again: it must not wait for a second turn).
_in_turn: ContextVar[bool] = ContextVar("coursereg_cluster_turn", default=False)


class QueuedRedisCluster(RedisCluster):
    """redis-py's cluster client with a queue in front, like BlockingConnectionPool for one
    server: at most `turns` commands and pipelines in flight per process, the others wait.

    Written because redis-py 8.1's cluster client has no blocking pool: past its connection
    limit a node raises MaxConnectionsError, and a pipeline that meets it closes every
    connection of the client while other commands are using them (they fail with
    AttributeError). Each command or pipeline holds at most one connection per node, so with
    the limit above `turns` that never happens."""

    def __init__(self, *args: Any, turns: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns = asyncio.Semaphore(turns)

    async def in_turn(self, work: Callable[[], Awaitable[T]]) -> T:
        if _in_turn.get():
            return await work()
        async with self.turns:
            held = _in_turn.set(True)
            try:
                return await work()
            finally:
                _in_turn.reset(held)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        run = super().execute_command
        return await self.in_turn(lambda: run(*args, **kwargs))

    def pipeline(
        self, transaction: Any | None = None, shard_hint: Any | None = None
    ) -> ClusterPipeline:
        if shard_hint:
            raise RedisClusterException("shard_hint is deprecated in cluster mode")
        return QueuedClusterPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does


class QueuedClusterPipeline(ClusterPipeline):
    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        run = super().execute
        client = self.cluster_client
        assert isinstance(client, QueuedRedisCluster)
        return await client.in_turn(lambda: run(raise_on_error, allow_redirections))


def cluster_client(url: str, retries: int, connections: int) -> QueuedRedisCluster:
    """Redis Cluster from any of its nodes; at most `connections` commands in flight, and
    one connection per node for each."""
    client = QueuedRedisCluster.from_url(
        url,
        turns=connections,
        decode_responses=True,
        # Room for the commands of a turn and a replaced connection per node.
        max_connections=connections + CONNECTION_HEADROOM,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=_retry(retries),
    )
    assert isinstance(client, QueuedRedisCluster)
    return client


async def cluster_enabled(url: str, wait_seconds: float | None = None) -> bool:
    """Whether the server at `url` runs in cluster mode. Waits for it to answer, for ever
    (None) or `wait_seconds`, then lets the connection error through."""
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    while True:
        probe = Redis.from_url(url, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0))
        try:
            info = await probe.info("cluster")
            return str(info.get("cluster_enabled", 0)) == "1"
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise
            log.warning("waiting for Redis: %s", exc)
        finally:
            await probe.aclose()
        await asyncio.sleep(PROBE_RETRY_SECONDS)
