"""`make explore SECONDS=n`: fresh seeds for as long as asked (not collected by `make test`:
its name is no test module's). Prints a line per seed, the seed and shrunk step list of
each failure, and how many seeds a second it ran."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence

import pytest

from infrastructure.settings import Settings
from tests.explorer.decisions import Decision
from tests.explorer.exploration import Outcome, Run
from tests.explorer.settings import SECONDS, SHRINK_SECONDS, TOLERATE
from tests.explorer.shrink import shrink


@pytest.mark.timeout(SECONDS + 600)
async def test_fresh_seeds(settings: Settings) -> None:
    assert SECONDS > 0, "EXPLORE_SECONDS: how long to explore (make explore SECONDS=600)"
    started = time.monotonic()
    runs, failed, kinds = 0, [], Counter[str]()
    while time.monotonic() - started < SECONDS:
        seed = random.SystemRandom().randrange(1_000, 1_000_000_000)
        outcome = await Run(settings, seed, tolerate=TOLERATE)()
        runs += 1
        print(f"[{time.monotonic() - started:.0f}s] {outcome.summary()}", flush=True)
        if outcome.first is None:
            continue
        failed.append(seed)
        kinds[outcome.first.kind] += 1

        async def replay(decisions: Sequence[Decision], seed: int = seed) -> Outcome:
            return await Run(settings, seed, script=decisions, tolerate=TOLERATE)()

        shrunk = await shrink(replay, outcome, SHRINK_SECONDS)
        print(f"FAILED seed {seed}, shrunk to:\n{shrunk.report()}\n", flush=True)
    elapsed = time.monotonic() - started
    print(
        f"{runs} seeds in {elapsed:.0f}s ({runs / elapsed:.2f}/s); failing: {failed}; "
        f"first violations: {dict(kinds)}"
    )
    assert not failed, f"failing seeds (make explore SEED=n replays one): {failed}"
