"""What the scheduler decides at each point, and who decides: random.Random(seed)
(Seeded), or a list written by hand or left by shrinking (Scripted).

A seeded scheduler rather than Hypothesis's RuleBasedStateMachine: its rules and
invariants are synchronous, while every step here is an await inside a running asyncio
request; a scheduler of our own owns the event loop's order outright and still replays
a seed and shrinks a failing list (shrink.py)."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tests.explorer.actions import OPERATOR, Spec
from tests.explorer.faults import Fault
from tests.explorer.model import Model
from tests.explorer.scheduler import Scheduler
from tests.explorer.world import World

KINDS = {
    "register": 30,
    "drop": 14,
    "swap": 8,
    "claim": 6,
    "decline": 3,
    "capacity": 6,
    "sweep": 7,
    "persist": 10,
    "rebuild": 2,
    "lose": 2,
}
P_KILL, P_SLEEP = 0.03, 0.02  # per decision, among the steps
P_LOST, P_RESEND = 0.03, 0.03  # per step of a request
MAX_SEATS = 3


@dataclass(frozen=True, slots=True)
class Start:
    number: int
    spec: Spec


@dataclass(frozen=True, slots=True)
class Grant:
    number: int
    fault: Fault = Fault.NONE


@dataclass(frozen=True, slots=True)
class Kill:
    number: int


@dataclass(frozen=True, slots=True)
class Sleep:
    """Time passes every deadline pending now (offers, held seats, reservations)."""


@dataclass(frozen=True, slots=True)
class RunUntil:
    """Grant the action's steps until it parks at a gate whose label starts with `label`
    (not granted), or finishes ("" : runs it to its end). For scripts written by hand."""

    number: int
    label: str = ""


Decision = Start | Grant | Kill | Sleep | RunUntil


class Chooser(Protocol):
    def next(self) -> Decision | None: ...


def operator_busy(scheduler: Scheduler) -> bool:
    return any(a.label.split(" ")[0] in OPERATOR for a in scheduler.live())


class Seeded:
    def __init__(
        self,
        rng: random.Random,
        world: World,
        model: Model,
        scheduler: Scheduler,
        budget: int,
    ) -> None:
        self.rng, self.world, self.model = rng, world, model
        self.scheduler, self.budget = scheduler, budget
        self.started = 0

    def next(self) -> Decision | None:
        runnable = self.scheduler.runnable()
        if self.started < self.budget and self._want_start(len(self.scheduler.live()), runnable):
            self.started += 1
            return Start(self.started, self._spec())
        if not runnable:
            return None
        roll = self.rng.random()
        killable = [a for a in runnable if a.killable]
        if roll < P_KILL and killable:
            return Kill(self.rng.choice(killable).number)
        if roll < P_KILL + P_SLEEP:
            return Sleep()
        action = self.rng.choice(runnable)
        fault, draw = Fault.NONE, self.rng.random()
        if action.faultable and draw < P_LOST:
            fault = Fault.LOST
        elif action.faultable and draw < P_LOST + P_RESEND:
            fault = Fault.RESEND
        return Grant(action.number, fault)

    def _want_start(self, live: int, runnable: Sequence[object]) -> bool:
        if not runnable:
            return True
        return self.rng.random() < (0.35 if live < 2 else 0.2 if live < 5 else 0.0)

    def _spec(self) -> Spec:
        kinds = dict(KINDS)
        if operator_busy(self.scheduler):
            kinds.pop("rebuild"), kinds.pop("lose")
        kind = self.rng.choices(list(kinds), weights=list(kinds.values()))[0]
        n_students, n_sections = len(self.world.students), len(self.world.sections)
        student = self.rng.randrange(n_students)
        section = self.rng.randrange(n_sections)
        if kind == "register":
            count = min(self.rng.choice((1, 1, 2)), n_sections)
            return Spec(kind, student, tuple(self.rng.sample(range(n_sections), count)))
        if kind in ("drop", "swap", "claim", "decline"):
            student, section = self._held_pair(kind, student, section)
            if kind != "swap":
                return Spec(kind, student, (section,))
            other = self.rng.choice([i for i in range(n_sections) if i != section])
            return Spec(kind, student, (section, other))
        if kind == "capacity":
            total = self.model.total[self.world.sections[section].id] + self.rng.choice((-1, 1))
            return Spec(kind, sections=(section,), total=max(1, min(MAX_SEATS, total)))
        if kind == "lose":
            return Spec(kind, sections=(section,))
        return Spec(kind)

    def _held_pair(self, kind: str, student: int, section: int) -> tuple[int, int]:
        """Mostly a student and a section they hold (enrolled; in line for claims)."""
        pairs = []
        for i, st in enumerate(self.world.students):
            for j, s in enumerate(self.world.sections):
                enrolled = str(st.id) in self.model.enrolled[s.id]
                waiting = str(st.id) in self.model.line[s.id]
                if (
                    waiting
                    if kind in ("claim", "decline")
                    else enrolled or (kind == "drop" and waiting)
                ):
                    pairs.append((i, j))
        if pairs and self.rng.random() < 0.8:
            return self.rng.choice(pairs)
        return student, section


class Scripted:
    """Decisions from a list; one that does not apply (its action is not parked, or an
    operator's command is running) is skipped, as a shrunk list needs."""

    def __init__(self, decisions: Iterable[Decision], scheduler: Scheduler) -> None:
        self.queue = deque(decisions)
        self.scheduler = scheduler

    def next(self) -> Decision | None:
        while self.queue:
            decision = self.queue.popleft()
            if self._applies(decision):
                return decision
        return None

    def _applies(self, decision: Decision) -> bool:
        actions = self.scheduler.actions
        if isinstance(decision, Start):
            operator = decision.spec.kind in OPERATOR
            return decision.number not in actions and not (
                operator and operator_busy(self.scheduler)
            )
        if isinstance(decision, Sleep):
            return True
        action = actions.get(decision.number)
        return action is not None and action.runnable
