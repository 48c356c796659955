"""Shrinking a failing run: delta debugging over its decision list (drop chunks, halving
their size, while the run still fails with the same kind of violation), then faults
taken off one by one. Decisions left without their action (its start was dropped) are
skipped on replay (decisions.Scripted), so any sublist is a valid run."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence

from tests.explorer.decisions import Decision, Grant
from tests.explorer.exploration import Outcome
from tests.explorer.faults import Fault

Replay = Callable[[Sequence[Decision]], Awaitable[Outcome]]


async def shrink(replay: Replay, failed: Outcome, seconds: float) -> Outcome:
    first = failed.first
    assert first is not None, "only a failing run shrinks"
    deadline = time.monotonic() + seconds
    best = failed

    async def still_fails(candidate: Sequence[Decision]) -> bool:
        nonlocal best
        if time.monotonic() > deadline:
            return False
        outcome = await replay(candidate)
        if outcome.first is None or outcome.first.kind != first.kind:
            return False
        best = outcome
        return True

    chunks = 2
    while len(best.decisions) > 1 and time.monotonic() < deadline:
        decisions = best.decisions
        size = math.ceil(len(decisions) / chunks)
        for start in range(0, len(decisions), size):
            if await still_fails(decisions[:start] + decisions[start + size :]):
                chunks = max(chunks - 1, 2)
                break
        else:
            if size == 1:
                break
            chunks = min(chunks * 2, len(decisions))
    i = 0
    while i < len(best.decisions):
        decision = best.decisions[i]
        if isinstance(decision, Grant) and decision.fault is not Fault.NONE:
            await still_fails(
                [*best.decisions[:i], Grant(decision.number), *best.decisions[i + 1 :]]
            )
        i += 1
    return best
