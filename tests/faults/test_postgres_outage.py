"""Fault 2: PostgreSQL stopped (`pg_ctl -m immediate`, a crash) for 30 s during a rush.

DESIGN.md, Recovery: register and drop keep answering from Redis; jobs wait in the streams;
/ready stays 200 ("degraded"), /health reports Postgres down and the growing lag; catalog
writes answer UNAVAILABLE; workers retry with backoff (no crash, no log flood) and, once
Postgres is back, drain the streams until Postgres equals Redis."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx

from domain.model import Role
from tests.faults.checks import EventLog, settle_and_check
from tests.faults.cluster import Proc, deployment, populate
from tests.faults.rush import Ledger, Rush

OUTAGE = float(os.environ.get("FAULT_OUTAGE_SECONDS", "30"))
CREATE_COURSE = """mutation($i: CreateCourseInput!) { createCourse(input: $i) { id } }"""


async def probe(api: Proc) -> tuple[int, dict[str, Any], dict[str, Any]]:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
        ready = await client.get("/ready")
        health = await client.get("/health")
    return ready.status_code, ready.json(), health.json()


async def test_a_postgres_outage_during_a_rush_loses_nothing_and_drains_when_it_returns() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=6, seats=6, students=60)
        workers = [deployed.worker(f"w{i}") for i in range(2)]
        ledger, events, stop = Ledger(), EventLog(), asyncio.Event()
        rush = Rush(api.url, deployed.container.tokens, students, sections, ledger, pause=0.05)
        staff = deployed.container.tokens.issue(Role.STAFF, "staff-1")
        seen: dict[str, Any] = {}

        async def outage() -> None:
            await ledger.more(60)  # the rush is under way
            await deployed.drain()  # what was answered so far is in Postgres
            await asyncio.to_thread(deployed.postgres.stop, "immediate")
            started, answers_before = time.monotonic(), ledger.answers
            samples = []
            while time.monotonic() - started < OUTAGE:
                samples.append(await probe(api))
                await asyncio.sleep(OUTAGE / 6)
            seen["samples"] = samples
            seen["answers_during"] = ledger.answers - answers_before
            async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
                seen["catalog_write"] = await client.post(
                    "/graphql",
                    json={"query": CREATE_COURSE, "variables": {"i": {"code": "X1", "name": "X"}}},
                    headers={"Authorization": f"Bearer {staff}"},
                )
            seen["workers_alive"] = [w.alive() for w in workers]
            await asyncio.to_thread(deployed.postgres.start)
            await ledger.more(60)  # answers go on once Postgres is back
            stop.set()

        async with events.listening(deployed.container, sections):
            await asyncio.gather(outage(), rush.run(stop))

        for status, ready, health in seen["samples"]:
            assert status == 200 and ready["status"] == "degraded", ready
            assert ready["postgres"] == "down" and ready["redis"] == "up", ready
            assert health["status"] == "degraded" and health["postgres"]["status"] == "down"
        lags = [health["streams"]["unapplied"] for _, _, health in seen["samples"]]
        assert lags == sorted(lags) and lags[-1] > lags[0], f"the lag grows: {lags}"
        assert seen["answers_during"] > 50, "register and drop kept answering from Redis"
        write = seen["catalog_write"]
        assert write.status_code == 200 and write.json()["errors"][0]["extensions"]["code"] == (
            "UNAVAILABLE"
        ), write.text
        assert all(seen["workers_alive"]), "workers survive the outage"

        figures = await settle_and_check(deployed, "postgres-down", ledger, sections, events)
        retries = [w.text().count("database unavailable") for w in workers]
        print(
            f"outage={OUTAGE:.0f}s answers_during_outage={seen['answers_during']} "
            f"lag_during_outage={lags} worker_retry_lines={retries}"
        )
        assert all(w.alive() for w in workers) and api.alive()
        # Backoff: a few retries per shard and second at most, not a hot loop.
        assert sum(retries) < 4 * deployed.settings.shards * OUTAGE, retries
        logged = "".join(w.text() for w in workers)
        print("\n".join(sorted({line.split(" ", 3)[-1][:160] for line in logged.splitlines()})))
        assert "Traceback" not in logged
        assert "isolating" not in logged and "dead-lettered" not in logged, "an outage is no poison"
        _, ready, _ = await probe(api)
        assert ready["status"] == "ready", ready
        assert figures.lost == 0
