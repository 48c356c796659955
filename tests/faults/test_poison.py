"""Fault 5: a poison job (an enrollment of a student Postgres does not know: a foreign-key
violation) in a shard stream during a rush. A `coursereg worker` process retries it
COURSEREG_MAX_JOB_ATTEMPTS times, moves it to the shard's dead-letter stream and goes on: the
changes behind it in the same shard are persisted exactly once. The dead letter shows in
/health (status degraded), in the API's /metrics and in the worker's own /metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial

import httpx
from redis.typing import EncodableT, FieldT

from infrastructure.redis.keys import shard_of
from tests.faults.checks import EventLog, settle_and_check
from tests.faults.cluster import deployment, populate
from tests.faults.rush import Ledger, Rush
from tests.servers import free_port
from tests.waiting import wait_until

ATTEMPTS = 3


async def test_a_poison_job_is_dead_lettered_after_n_tries_and_does_not_block_its_shard() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=4, seats=5, students=40)
        poisoned = sections[0]
        shard = shard_of(poisoned, deployed.settings.shards)
        container = deployed.container
        poison: dict[FieldT, EncodableT] = {
            "k": "enroll",
            "s": str(poisoned),
            "u": str(uuid.uuid4()),
            "v": "999",
            "at": str(int(time.time() * 1000)),
            "rid": "poison-request",
        }
        ledger, events, stop = Ledger(), EventLog(), asyncio.Event()
        rush = Rush(api.url, container.tokens, students, sections, ledger)
        metrics_port = free_port()

        stream = container.keys.stream(shard)

        async def queued_behind(poisoned_at: str) -> bool:
            behind = await container.redis.xrange(stream, f"({poisoned_at}", count=5)
            return len(behind or []) >= 5

        async def dead_lettered() -> bool:
            return await container.stream.dead_letter_count(deployed.settings.shards) > 0

        async def poison_then_worker() -> None:
            await ledger.more(30)  # the rush is under way
            poisoned_at = str(await container.redis.xadd(stream, poison))
            await wait_until(
                partial(queued_behind, poisoned_at), 30, "good changes queued behind the poison"
            )
            deployed.worker(
                "eater",
                COURSEREG_MAX_JOB_ATTEMPTS=str(ATTEMPTS),
                COURSEREG_WORKER_METRICS_PORT=str(metrics_port),
            )
            await wait_until(dead_lettered, 60, "the poison dead-lettered")
            await ledger.more(60)  # the rush goes on after it
            stop.set()

        async with events.listening(container, sections):
            await asyncio.gather(poison_then_worker(), rush.run(stop))
        figures = await settle_and_check(
            deployed, "poison-job", ledger, sections, events, dead_letters=1
        )

        (letter,) = await container.stream.dead_letters(shard)
        assert letter["rid"] == "poison-request" and "ForeignKeyViolation" in letter["error"]
        async with httpx.AsyncClient(timeout=10) as client:
            health = (await client.get(f"{api.url}/health")).json()
            api_metrics = (await client.get(f"{api.url}/metrics")).text
            worker_metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
        assert health["dead_letters"] == 1 and health["status"] == "degraded", health
        assert f'coursereg_dead_letters{{shard="{shard}"}} 1.0' in api_metrics
        assert "coursereg_worker_dead_lettered_total 1.0" in worker_metrics
        worker_log = deployed.procs[-1].text()
        tries = [f"failed {n} time(s)" in worker_log for n in range(1, ATTEMPTS)]
        assert all(tries) and f"dead-lettered after {ATTEMPTS} attempts" in worker_log
        print(f"dead_letters=1 after {ATTEMPTS} attempts; good changes behind it applied")
        assert figures.lost == 0
