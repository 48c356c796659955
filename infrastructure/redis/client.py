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
from typing import TypeAlias

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RedisClient: TypeAlias = Redis | RedisCluster
RedisPipeline: TypeAlias = Pipeline | ClusterPipeline

PROBE_RETRY_SECONDS = 1.0


def _retry(retries: int) -> Retry:
    # Retried commands are safe: the seat scripts answer ALREADY_* to a repeat, and
    # claim.lua recognizes its own claim.
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


def cluster_client(url: str, retries: int, connections: int) -> RedisCluster:
    """Redis Cluster from any of its nodes; `connections` is the limit per node (redis-py's
    cluster client has no blocking pool: past the limit a command fails at once)."""
    return RedisCluster.from_url(
        url,
        decode_responses=True,
        max_connections=connections,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=_retry(retries),
    )


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
