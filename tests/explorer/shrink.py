"""Shrinking a failing run: delta debugging over its decision list (drop chunks, halving
their size, while the run still fails the same way), then faults taken off one by one.
"The same way": the first violation is of the same kind and appears after the same gate,
so a holding lost after a settle does not shrink into another race that breaks the same
invariant elsewhere. Decisions left without their action (its start was dropped) are
skipped on replay (decisions.Scripted), so any sublist is a valid run."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable, Sequence

from tests.explorer.decisions import Decision, Grant
from tests.explorer.exploration import Found, Outcome
from tests.explorer.faults import Fault

Replay = Callable[[Sequence[Decision]], Awaitable[Outcome]]


def _same(found: Found, first: Found) -> bool:
    """The same kind of violation after the same gate: the same race, not just any."""
    gate = found.at.split(" ", 1)[-1]
    return found.violation.kind == first.violation.kind and gate == first.at.split(" ", 1)[-1]


async def shrink(replay: Replay, failed: Outcome, seconds: float) -> Outcome:
    assert failed.violations, "only a failing run shrinks"
    first = failed.violations[0]
    deadline = time.monotonic() + seconds
    best = failed

    async def still_fails(candidate: Sequence[Decision]) -> bool:
        nonlocal best
        if time.monotonic() > deadline:
            return False
        outcome = await replay(candidate)
        if not outcome.violations or not _same(outcome.violations[0], first):
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
