"""The review's two confirmed races (reference/review-2026-12-05.md F1 and F2), driven step by
step through the explorer's scheduler, every invariant checked after each step. Both fail
on 6e12c64 (the report lists each violation with the step it appeared at) and pass once
the saga and the rebuild are fixed."""

from __future__ import annotations

import pytest

from infrastructure.settings import Settings
from tests.explorer.actions import Spec
from tests.explorer.decisions import Decision, RunUntil, Start
from tests.explorer.exploration import Run
from tests.explorer.world import fixed_world

A, X, Y = 0, 1, 2  # students
S0, S1 = 0, 1  # sections: one seat each, meeting at the same hour


async def test_f1_a_students_own_settle_never_moves_a_promoted_holding_back(
    settings: Settings,
) -> None:
    """X waits for S0 (register.lua said WAITLISTED, X's settle not sent yet); A drops S0 and
    the promoter enrolls X (confirm passes X's R, claim, settle E); then X's own settle
    arrives with W. The holding must stay E: else S0 counts no credits or time, and X is
    admitted to S1, which meets at the same hour."""
    world = fixed_world([(1, False), (1, False)], [6.0, 6.0])
    script: list[Decision] = [
        Start(1, Spec("register", A, (S0,))),
        RunUntil(1),
        Start(2, Spec("register", X, (S0,))),
        RunUntil(2, "rules.settle"),
        Start(3, Spec("drop", A, (S0,))),
        RunUntil(3),
        RunUntil(2),
        Start(4, Spec("register", X, (S1,))),
        RunUntil(4),
    ]
    outcome = await Run(settings, 0, world=world, script=script, collect=True)()
    if not outcome.ok:
        pytest.fail(outcome.report(), pytrace=False)


async def test_f2_a_rebuild_keeps_the_seat_held_for_the_head_of_the_line(
    settings: Settings,
) -> None:
    """A drops S0 and the seat is held (p) for X, the head of the line; before the promoter
    claims it, `rebuild-cache` takes the markers down (the claim answers UNAVAILABLE and
    the hold stays), drains and reloads. The seat must still be X's: else it is free while
    X waits, and Y, who comes later, takes it."""
    world = fixed_world([(1, False)], [6.0, 6.0, 6.0])
    script: list[Decision] = [
        Start(1, Spec("register", A, (S0,))),
        RunUntil(1),
        Start(2, Spec("register", X, (S0,))),
        RunUntil(2),
        Start(3, Spec("drop", A, (S0,))),
        RunUntil(3, "seats.resolve"),
        Start(4, Spec("rebuild")),
        RunUntil(4, "rebuild.reload"),
        RunUntil(3),
        RunUntil(4),
        Start(5, Spec("register", Y, (S0,))),
        RunUntil(5),
    ]
    outcome = await Run(settings, 0, world=world, script=script, collect=True)()
    if not outcome.ok:
        pytest.fail(outcome.report(), pytrace=False)
