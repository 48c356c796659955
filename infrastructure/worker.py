"""A worker process: the persister with its own pools, stopped cleanly by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal

from infrastructure.container import Container
from infrastructure.settings import Settings
from workers.persister import Persister

log = logging.getLogger(__name__)


def make_persister(container: Container, consumer: str) -> Persister:
    settings = container.settings
    return Persister(
        stream=container.stream,
        changes=container.changes,
        shards=settings.shards,
        consumer=consumer,
        batch=settings.worker_batch,
        max_attempts=settings.max_job_attempts,
    )


async def run_worker(settings: Settings, consumer: str) -> None:
    container = Container.build(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    persister = make_persister(container, consumer)
    log.info("worker %s started", consumer)
    try:
        await persister.run(stop)
    finally:
        await container.close()
        log.info("worker %s stopped: %d changes applied", consumer, persister.stats.applied)
