"""The interleaving explorer (DESIGN.md: "a model-based explorer in the suite chooses step
orders and injected faults and checks these invariants after every step"): seeded runs of
concurrent requests of a few students, each step ordered and faults injected by the
scheduler, the invariants checked after every step. `make test` runs the fixed seeds;
EXPLORE_SEED=n (make explore SEED=n) replays one and shrinks it if it fails."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from infrastructure.settings import Settings
from tests.explorer.decisions import Decision
from tests.explorer.exploration import Outcome, Run
from tests.explorer.settings import FIXED_SEEDS, SEED, SHRINK_SECONDS, TOLERATE
from tests.explorer.shrink import shrink


@pytest.mark.parametrize("seed", FIXED_SEEDS if SEED is None else [SEED])
async def test_interleavings_keep_the_invariants(settings: Settings, seed: int) -> None:
    outcome = await Run(settings, seed, tolerate=TOLERATE)()
    if outcome.ok:
        return
    if SEED is None:
        pytest.fail(f"{outcome.report()}\nreplay and shrink: make explore SEED={seed}", False)

    async def replay(decisions: Sequence[Decision]) -> Outcome:
        return await Run(settings, seed, script=decisions, tolerate=TOLERATE)()

    shrunk = await shrink(replay, outcome, SHRINK_SECONDS)
    pytest.fail(f"{outcome.summary()}\nshrunk to:\n{shrunk.report()}", False)
