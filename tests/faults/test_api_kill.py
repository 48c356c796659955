"""Fault 3: the API process SIGKILLed during a rush, then started again on the same port while
the clients go on (retrying unanswered requests with their idempotency keys).

Invariants: every answer a client received is in Redis the moment the process dies (the seat
script reserved and enqueued it atomically before the answer left), and in Postgres once the
streams drain; no seat lost or sold twice; FIFO; Redis equals Postgres."""

from __future__ import annotations

import asyncio

from tests.faults.checks import EventLog, lost_in_redis, settle_and_check
from tests.faults.cluster import deployment, populate
from tests.faults.rush import Ledger, Rush

KILLS = 3


async def test_the_api_killed_during_a_rush_loses_no_answer_it_gave() -> None:
    async with deployment() as deployed:
        api = await deployed.serve("api-0")
        port = int(api.url.rsplit(":", 1)[1])
        sections, students = await populate(deployed, sections=6, seats=6, students=60)
        deployed.worker("w0")
        ledger, events, stop = Ledger(), EventLog(), asyncio.Event()
        rush = Rush(api.url, deployed.container.tokens, students, sections, ledger)
        unanswered_at_kill = []

        async def killer() -> None:
            nonlocal api
            for kill in range(KILLS):
                await ledger.more(60)
                answered = ledger.answers
                await api.kill()
                assert api.process.returncode == -9
                unanswered_at_kill.append(sum(ledger.unanswered.values()))
                # Every answer given before the crash is already in Redis.
                await lost_in_redis(deployed, ledger, sections)
                assert answered > 0
                api = await deployed.serve(f"api-{kill + 1}", port=port)
            await ledger.more(60)
            stop.set()

        async with events.listening(deployed.container, sections):
            await asyncio.gather(killer(), rush.run(stop))
        figures = await settle_and_check(deployed, "api-sigkill", ledger, sections, events)
        print(
            f"API SIGKILLs={KILLS} requests={ledger.requests} "
            f"unanswered={dict(ledger.unanswered)} still_uncertain={len(ledger.uncertain)}"
        )
        assert figures.lost == 0
