"""Fault 1: worker processes SIGKILLed mid-batch, again and again, during a rush served by a
`coursereg serve` process. Invariant (DESIGN.md 3): every acknowledged answer reaches Postgres
exactly once (stream entries added == changes applied), and the other four hold."""

from __future__ import annotations

import asyncio
import random

from tests.faults.checks import EventLog, applied_and_rows, settle_and_check
from tests.faults.cluster import deployment, populate
from tests.faults.rush import Ledger, Rush

KILLS = 5


async def test_workers_killed_mid_batch_during_a_rush_lose_and_repeat_nothing() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=6, seats=6, students=60)
        ledger, events, stop = Ledger(), EventLog(), asyncio.Event()
        rush = Rush(api.url, deployed.container.tokens, students, sections, ledger)

        async def killer() -> int:
            """Start a worker; once it has committed a batch, SIGKILL it at a random moment
            (so most kills land between a commit and its XACK, or inside a batch)."""
            for kill in range(KILLS):
                victim = deployed.worker(f"victim-{kill}")
                before, _ = await applied_and_rows(deployed.database_url)
                for _ in range(400):
                    if (await applied_and_rows(deployed.database_url))[0] > before:
                        break
                    await asyncio.sleep(0.025)
                await asyncio.sleep(random.uniform(0, 0.1))
                await victim.kill()
                assert victim.process.returncode == -9
            stop.set()
            return KILLS

        async with events.listening(deployed.container, sections):
            kills, _ = await asyncio.gather(killer(), rush.run(stop))
        backlog = await deployed.lag()
        deployed.worker("survivor")
        figures = await settle_and_check(deployed, "worker-sigkill", ledger, sections, events)
        print(f"worker SIGKILLs={kills} backlog_at_the_last_kill={backlog}")
        assert kills == KILLS and figures.lost == 0
        assert api.alive(), "the API kept serving"
