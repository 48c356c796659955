"""Fault 6: drift between Redis and Postgres, seeded on purpose after a rush (a wrong seat
count, a phantom enrollment only Redis has, an enrollment Redis forgot, two waiting students
swapped, a wrong total, a section gone from Redis). `coursereg reconcile` (a subprocess, as
an operator runs it) names every drifted section and exits 1; `--repair` rebuilds their
shards from Postgres (markers down, streams drained, reloaded); a second run finds nothing;
and a new rush on the repaired state keeps every invariant. Extends test_cli.py's
single-drift case to every kind of drift."""

from __future__ import annotations

import asyncio
import uuid
from typing import cast

from tests.faults.checks import settle_and_check
from tests.faults.cluster import Deployment, deployment, populate
from tests.faults.rush import Ledger, Rush


async def rush_for(deployed: Deployment, url: str, answers: int, *ids: list[uuid.UUID]) -> Ledger:
    sections, students = ids
    ledger, stop = Ledger(), asyncio.Event()
    rush = Rush(url, deployed.container.tokens, students, sections, ledger)

    async def stopper() -> None:
        await ledger.more(answers)
        stop.set()

    await asyncio.gather(stopper(), rush.run(stop))
    return ledger


async def seed_drift(deployed: Deployment, sections: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """One kind of drift per section; returns what reconcile must say about each."""
    redis, keys = deployed.container.redis, deployed.container.keys
    lines = [await redis.zcard(keys.section(s).waitlist) for s in sections]
    longest = sections[lines.index(max(lines))]  # its line gets two students swapped
    sections = [s for s in sections if s != longest]
    sections.insert(3, longest)
    k = [keys.section(s) for s in sections]
    await redis.incrby(k[0].seats, 1)
    await redis.sadd(k[1].enrolled, str(uuid.uuid4()))
    await redis.srem(k[2].enrolled, str(await redis.srandmember(k[2].enrolled) or ""))
    scored = await redis.zrange(k[3].waitlist, 0, -1, withscores=True)
    line = cast(list[tuple[str, float]], scored)  # decode_responses, withscores
    assert len(line) >= 2, "the rush left a waitlist of two or more"
    (first, a), (second, b) = line[0], line[1]
    await redis.zadd(k[3].waitlist, {first: b, second: a})
    await redis.hincrby(k[4].meta, "total", 2)
    await redis.delete(k[5].meta, k[5].seats, k[5].enrolled, k[5].waitlist)
    return {
        sections[0]: "seat count",
        sections[1]: "enrolled differ: 1 only in Redis",
        sections[2]: "only in Postgres",
        sections[3]: "waitlist differs",
        sections[4]: "total seats: Redis",
        sections[5]: "missing in Redis",
    }


async def test_reconcile_reports_every_kind_of_drift_and_repair_restores_the_invariants() -> None:
    async with deployment() as deployed:
        api = await deployed.serve()
        sections, students = await populate(deployed, sections=6, seats=4, students=60)
        deployed.worker("w0")
        first = await rush_for(deployed, api.url, 300, sections, students)
        await deployed.drain()
        assert (await deployed.coursereg("reconcile")).returncode == 0

        expected = await seed_drift(deployed, sections)
        found = await deployed.coursereg("reconcile")
        assert found.returncode == 1, found.stdout + found.stderr
        for section, problem in expected.items():
            line = next(x for x in found.stdout.splitlines() if x.startswith(f"section {section}"))
            assert problem in line, (problem, line)
        assert "6 drifted" in found.stdout

        repaired = await deployed.coursereg("reconcile", "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "6 drifted" in repaired.stdout and "rebuilt from Postgres" in repaired.stdout
        assert "after the repair: 0 drifted" in repaired.stdout
        again = await deployed.coursereg("reconcile")
        assert again.returncode == 0 and "0 drifted" in again.stdout, again.stdout

        second = await rush_for(deployed, api.url, 300, sections, students)
        second.last = {**first.last, **second.last}
        second.answers += first.answers
        figures = await settle_and_check(deployed, "reconcile-drift", second, sections)
        print(f"drift seeded=6 kinds, reported=6, repaired=6\n{found.stdout.strip()}")
        assert figures.lost == 0
