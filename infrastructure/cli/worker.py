"""A worker process: the persister with its own pools, stopped cleanly by SIGTERM/SIGINT,
its own /metrics port, and log lines naming the requests whose changes it wrote."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterator, Sequence

from prometheus_client import start_http_server

from domain.changes import Change
from domain.leases import Lease
from infrastructure.container import Container
from infrastructure.metrics import (
    WORKER_APPLIED,
    WORKER_BATCH_SECONDS,
    WORKER_BATCH_SIZE,
    WORKER_DEAD_LETTERED,
    NotificationMetrics,
)
from infrastructure.notify.channels import Channels, http_client, make_channels
from infrastructure.postgres.changes import PostgresChangeLog
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.settings import Settings
from workers.notifier import Notifier
from workers.persister import Persister

log = logging.getLogger(__name__)


def request_ids(changes: Sequence[Change]) -> list[str]:
    return list(dict.fromkeys(c.request_id for c in changes if c.request_id))


class ObservedChangeLog(PostgresChangeLog):
    """Times and counts each batch, and logs which requests' changes it wrote."""

    async def apply(self, lease: Lease, changes: Sequence[Change]) -> int:
        started = time.perf_counter()
        applied = await super().apply(lease, changes)
        WORKER_BATCH_SECONDS.observe(time.perf_counter() - started)
        WORKER_BATCH_SIZE.observe(len(changes))
        WORKER_APPLIED.inc(applied)
        ids = request_ids(changes)
        log.info(
            "shard %d: applied %d of %d change(s) of request(s) %s",
            lease.shard,
            applied,
            len(changes),
            " ".join(ids),
            extra={"shard": lease.shard, "applied": applied, "request_ids": ids},
        )
        return applied

    async def apply_prefix(
        self, lease: Lease, changes: Sequence[Change]
    ) -> tuple[int, Change | None, BaseException | None]:
        applied, failed, error = await super().apply_prefix(lease, changes)
        WORKER_APPLIED.inc(applied)
        return applied, failed, error


class ObservedChangeStream(RedisChangeStream):
    """Counts dead letters (the persister logs each, naming its request)."""

    async def dead_letter(self, shard: int, change: Change, error: str) -> None:
        await super().dead_letter(shard, change, error)
        WORKER_DEAD_LETTERED.inc()


def make_persister(container: Container, consumer: str, sweep: bool = True) -> Persister:
    """A worker's persister; `sweep`: it also settles what died half-way in its shards."""
    settings = container.settings
    return Persister(
        stream=ObservedChangeStream(container.redis, container.scripts, container.keys),
        changes=ObservedChangeLog(container.sessions, email=settings.email_enabled),
        shards=settings.shards,
        consumer=consumer,
        batch=settings.worker_batch,
        max_attempts=settings.max_job_attempts,
        lease_ms=settings.lease_ms,
        sweep=container.promoter.sweep if sweep else None,
    )


def make_notifier(container: Container, channels: Channels) -> Notifier:
    """A worker's notifier: the outbox's deliveries, by these channels."""
    settings = container.settings
    return Notifier(
        outbox=container.outbox,
        channel=channels,
        timeout=settings.notify_timeout_seconds,
        retry_first=settings.notify_retry_first_seconds,
        retry_cap=settings.notify_retry_cap_seconds,
        max_attempts=settings.notify_max_attempts,
        poll=settings.notify_poll_seconds,
        concurrency=settings.notify_concurrency,
        observer=NotificationMetrics(),
    )


@contextlib.contextmanager
def metrics_server(port: int) -> Iterator[None]:
    """Prometheus's /metrics for this process on `port` (0: none)."""
    if not port:
        yield
        return
    server, thread = start_http_server(port)
    log.info("worker metrics on :%d/metrics", port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def run_worker(settings: Settings, consumer: str) -> None:
    container = await Container.open(settings)  # waits for Redis; a cluster or not
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    persister = make_persister(container, consumer)
    client = http_client(settings)
    channels = make_channels(settings, client)
    loops = [persister.run(stop)]
    if settings.notify:
        loops.append(make_notifier(container, channels).run(stop))
    log.info("worker %s started (notifier %s)", consumer, "on" if settings.notify else "off")
    try:
        with metrics_server(settings.worker_metrics_port):
            await asyncio.gather(*loops)
    finally:
        channels.close()
        await client.aclose()
        await container.close()
        log.info("worker %s stopped: %d changes applied", consumer, persister.stats.applied)
