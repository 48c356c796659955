"""Fault 4: Redis SIGKILLed during a rush and started again.

With AOF (`appendfsync always`, as in production) every acknowledged answer survives: the
state is intact, the API's pub/sub hub reconnects by itself and re-sends every subscriber a
snapshot, new subscribers get new events, and the workers drain the streams with nothing
lost or applied twice.

Started EMPTY (no persistence), the API rebuilds the live state from Postgres before /ready
is 200 again, and /health and the logs say plainly which shards lost changes and from when:
the jobs that were still in the streams never reached Postgres. The test counts the answers
lost that way from what its clients were told, and after the rebuild every invariant holds
again for whatever is answered next."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from tests.faults.checks import (
    applied_and_rows,
    entries_added,
    lost_in_redis,
    settle_and_check,
)
from tests.faults.cluster import Deployment, Proc, deployment, populate
from tests.faults.rush import Ledger, Rush, postgres_standing
from tests.servers import ws_url
from tests.waiting import wait_until
from tests.wsclient import SEAT_UPDATES, GqlSocket

DOWN_SECONDS = 1.5


async def health(api: Proc) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as client:
        return dict((await client.get(f"{api.url}/health")).json())


async def ready_again(api: Proc, deployed: Deployment) -> tuple[int, dict[str, Any]]:
    """Poll /ready until 200; returns how many answers were not 200 before, and /health as
    it stood at the first 200 (the rebuild's report must already be there)."""
    refused = 0
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{api.url}/ready")).status_code == 200:
                    return refused, dict((await client.get(f"{api.url}/health")).json())
            refused += 1
            await asyncio.sleep(0.02)
    raise AssertionError(f"the API never became ready again:\n{deployed.logs()}")


async def looked_at_streams(api: Proc, deployed: Deployment) -> None:
    """Wait for the API's next whole look at the streams (infrastructure/state/losses.py, a
    look a second), the one a later rebuild reports from. A look is one pipeline with an
    XREVRANGE per shard, and nothing else here sends XREVRANGE: two looks' worth of calls
    more than now include one look begun after now."""

    async def calls() -> int:
        stats = await deployed.container.redis.info("commandstats")
        return int(stats.get("cmdstat_xrevrange", {}).get("calls", 0))

    async def looked() -> bool:
        return await calls() >= enough

    enough = await calls() + 2 * deployed.container.keys.shards
    await wait_until(looked, 10, f"{api.name}'s next look at the streams")


async def test_redis_restarted_with_aof_keeps_every_answer_and_everyone_reconnects() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=6, seats=6, students=60)
        quiet, _ = await populate(deployed, sections=1, seats=3, students=0)
        workers = [deployed.worker(f"w{i}") for i in range(2)]
        ledger, stop = Ledger(), asyncio.Event()
        rush = Rush(api.url, deployed.container.tokens, students, sections, ledger)
        seen: dict[str, Any] = {}

        async def crash() -> None:
            async with GqlSocket.open(ws_url(api.url)) as old:
                watched = await old.subscribe(SEAT_UPDATES, ids=[str(quiet[0])])
                first = await old.data(watched, timeout=20)
                await ledger.more(60)
                await deployed.redis.kill()
                seen["answers_at_crash"] = ledger.answers
                await asyncio.sleep(DOWN_SECONDS)
                await deployed.redis.start(persist=True)
                # The hub resubscribed and re-sent the quiet section's snapshot unasked.
                again = await old.data(watched, timeout=20)
                seen["snapshots"] = (first, again)
                await lost_in_redis(deployed, ledger, sections)
            async with GqlSocket.open(ws_url(api.url)) as new:
                op = await new.subscribe(SEAT_UPDATES, ids=[str(s) for s in sections])
                versions = [(await new.data(op, timeout=20))["version"] for _ in sections]
                change = await new.data(op, timeout=20)  # the rush goes on: a new event
                seen["new_subscriber"] = (versions, change)
            seen["health"] = await health(api)
            await ledger.more(60)
            stop.set()

        await asyncio.gather(crash(), rush.run(stop))
        first, again = seen["snapshots"]
        assert again == first, "a fresh snapshot of the unchanged section after the reconnect"
        assert seen["health"]["subscriptions"]["reconnects"] >= 1
        assert all(w.alive() for w in workers) and api.alive()
        figures = await settle_and_check(deployed, "redis-restart-aof", ledger, sections)
        print(
            f"answers_before_crash={seen['answers_at_crash']} answers_after={ledger.answers} "
            f"hub_reconnects={seen['health']['subscriptions']['reconnects']} "
            f"unanswered={dict(ledger.unanswered)}"
        )
        assert ledger.answers > seen["answers_at_crash"] and figures.lost == 0


async def test_redis_restarted_empty_is_rebuilt_from_postgres_and_the_loss_is_reported() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=6, seats=6, students=60)
        workers = [deployed.worker(f"w{i}") for i in range(2)]
        ledger, stop = Ledger(), asyncio.Event()
        rush = Rush(api.url, deployed.container.tokens, students, sections, ledger)
        seen: dict[str, Any] = {}

        async def crash() -> None:
            await ledger.more(60)
            for worker in workers:  # from now on answered changes wait in the streams
                await worker.kill()
            await ledger.more(60)
            await looked_at_streams(api, deployed)
            seen["waiting"] = await deployed.lag()
            await deployed.redis.kill()
            told = Ledger(last=dict(ledger.last))
            crashed = time.time()
            await asyncio.sleep(DOWN_SECONDS)
            await deployed.redis.start(persist=False)
            seen["not_ready"], seen["health"] = await ready_again(api, deployed)
            # Nothing was answered between the crash and the rebuild: compare what the
            # clients had been told with what Postgres (and so the rebuilt state) holds.
            seen["lost"] = told.lost(await postgres_standing(deployed.database_url))
            seen["applied"], _ = await applied_and_rows(deployed.database_url)
            seen["crashed"] = crashed
            ledger.last.clear()
            ledger.uncertain.clear()
            for i in range(2):
                deployed.worker(f"after-{i}")
            await ledger.more(60)
            stop.set()

        await asyncio.gather(crash(), rush.run(stop))
        report = seen["health"]["recovery"]
        assert report is not None, "the rebuild's report is in /health before /ready is 200"
        assert seen["not_ready"] > 0, "/ready refused until the state was rebuilt"
        lost_answers = len(seen["lost"])
        lost_reported = sum(d.get("lost_at_least", 0) for d in report["unrecovered"].values())
        assert seen["waiting"] > 0 and lost_answers > 0, "the test made something to lose"
        assert lost_reported > 0 and "could not be recovered" in report["message"], report
        assert lost_reported <= seen["waiting"], (lost_reported, seen["waiting"])
        logged = api.text()
        assert "ERROR" in logged and "could not be recovered" in logged

        # From the rebuilt state on, every invariant holds again.
        figures = await settle_and_check(
            deployed, "redis-restart-empty", ledger, sections, exactly_once=False
        )
        added = await entries_added(deployed.container)
        applied, _ = await applied_and_rows(deployed.database_url)
        assert added == applied - seen["applied"], "each new stream entry applied exactly once"
        print(
            f"changes_waiting_at_crash={seen['waiting']} answers_lost_by_clients_count="
            f"{lost_answers} changes_lost_reported_at_least={lost_reported} "
            f"ready_refusals_before_rebuild={seen['not_ready']}\nreport: {report['message']}"
        )
        assert figures.lost == 0
