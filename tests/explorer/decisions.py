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

from tests.explorer.actions import OPERATOR, RULE_CHANGES, Spec
from tests.explorer.faults import Fault
from tests.explorer.model import Model
from tests.explorer.scheduler import Action, Scheduler
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
    "rebuild": 3,
    "lose": 3,
}
# Staff's rule changes: drawn (after the kinds above, so the seeds that found a race before
# these existed replay as they did) only when a run asks for them (exploration.py).
RULE_KINDS = {"credits": 4}
P_KILL, P_SLEEP = 0.03, 0.02  # per decision, among the steps
P_LOST, P_RESEND = 0.03, 0.03  # per step of a request
P_DEMOTE = 0.1  # per step, by priority: the action about to run drops below all others
# Swarm testing (Groce et al., ISSTA 2012): each seed scales every kind of action and of
# event by one of these, so some seeds are all rebuilds and deaths, others have none; a
# race that needs two rare things at once meets them far more often than in the average.
SWARM = (0.0, 1.0, 1.0, 3.0)


@dataclass(frozen=True, slots=True)
class Swarm:
    """One seed's mix: the weight of each kind of action, the chance of each event."""

    kinds: dict[str, float]
    kill: float
    sleep: float
    lost: float
    resend: float

    @classmethod
    def draw(cls, rng: random.Random, rule_changes: bool = False) -> Swarm:
        kinds = {kind: weight * rng.choice(SWARM) for kind, weight in KINDS.items()}
        kinds["register"] = KINDS["register"]  # without registers nothing happens
        scaled = [p * rng.choice(SWARM) for p in (P_KILL, P_SLEEP, P_LOST, P_RESEND)]
        if rule_changes:
            kinds |= {kind: weight * rng.choice(SWARM) for kind, weight in RULE_KINDS.items()}
        return cls(kinds, *scaled)

    def describe(self) -> str:
        kinds = " ".join(f"{k}={w:g}" for k, w in self.kinds.items())
        return (
            f"swarm: {kinds}; kill={self.kill:g} sleep={self.sleep:g} "
            f"lost={self.lost:g} resend={self.resend:g}"
        )


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


def rules_changing(scheduler: Scheduler) -> bool:
    return any(a.label.split(" ")[0] in RULE_CHANGES for a in scheduler.live())


def excluded(kind: str, scheduler: Scheduler) -> bool:
    """An operator's command waits for the other and for a rule change; a rule change
    for an operator's command and for the other rule change."""
    if kind in OPERATOR:
        return operator_busy(scheduler) or rules_changing(scheduler)
    if kind in RULE_CHANGES:
        return operator_busy(scheduler) or rules_changing(scheduler)
    return False


class Seeded:
    """Half the seeds pick the next step uniformly among the parked actions; the other half
    by priority, as PCT does (Burckhardt et al., "A randomized scheduler with probabilistic
    guarantees of finding bugs", 2010): each action gets a random priority, the highest
    runs, and at a few random points the running one drops below all others. Uniform
    choice interleaves finely; priorities stall one request while others run through,
    the shape of most races here (a settle that arrives after a whole promotion)."""

    def __init__(
        self,
        rng: random.Random,
        world: World,
        model: Model,
        scheduler: Scheduler,
        budget: int,
        rule_changes: bool = False,
    ) -> None:
        self.rng, self.world, self.model = rng, world, model
        self.scheduler, self.budget = scheduler, budget
        self.started = 0
        self.by_priority = rng.random() < 0.5
        self.priority: dict[int, float] = {}
        self.swarm = Swarm.draw(rng, rule_changes)

    def next(self) -> Decision | None:
        runnable = self.scheduler.runnable()
        if self.started < self.budget and self._want_start(len(self.scheduler.live()), runnable):
            self.started += 1
            self.priority[self.started] = self.rng.random()
            return Start(self.started, self._spec())
        if not runnable:
            return None
        roll = self.rng.random()
        killable = [a for a in runnable if a.killable]
        swarm = self.swarm
        if roll < swarm.kill and killable:
            return Kill(self.rng.choice(killable).number)
        if roll < swarm.kill + swarm.sleep:
            return Sleep()
        action = self._pick(runnable)
        fault, draw = Fault.NONE, self.rng.random()
        if action.faultable and draw < swarm.lost:
            fault = Fault.LOST
        elif action.faultable and draw < swarm.lost + swarm.resend:
            fault = Fault.RESEND
        return Grant(action.number, fault)

    def _pick(self, runnable: Sequence[Action]) -> Action:
        if not self.by_priority:
            return self.rng.choice(runnable)
        action = max(runnable, key=lambda a: self.priority.get(a.number, 0.0))
        if self.rng.random() < P_DEMOTE:
            self.priority[action.number] = min(self.priority.values()) - self.rng.random()
        return action

    def _want_start(self, live: int, runnable: Sequence[object]) -> bool:
        if not runnable:
            return True
        return self.rng.random() < (0.35 if live < 2 else 0.2 if live < 5 else 0.0)

    def _spec(self) -> Spec:
        kinds = {k: w for k, w in self.swarm.kinds.items() if w and not excluded(k, self.scheduler)}
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
        if kind == "credits":
            course = self.world.sections[section].course_id
            credits = 4 if self.model.credits[course] == 3.0 else 3
            return Spec(kind, sections=(section,), total=credits)
        return Spec(kind)

    def _held_pair(self, kind: str, student: int, section: int) -> tuple[int, int]:
        """Mostly a student and a section they hold (enrolled; in line for claims), and
        for a drop rather a section with a line, where a freed seat moves on."""
        pairs, busy = [], []
        for i, st in enumerate(self.world.students):
            for j, s in enumerate(self.world.sections):
                enrolled = str(st.id) in self.model.enrolled[s.id]
                waiting = str(st.id) in self.model.line[s.id]
                wanted = waiting if kind in ("claim", "decline") else enrolled
                if wanted or (kind == "drop" and waiting):
                    pairs.append((i, j))
                    if enrolled and self.model.line[s.id]:
                        busy.append((i, j))
        if busy and self.rng.random() < 0.6:
            return self.rng.choice(busy)
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
            return decision.number not in actions and not excluded(
                decision.spec.kind, self.scheduler
            )
        if isinstance(decision, Sleep):
            return True
        action = actions.get(decision.number)
        return action is not None and action.runnable
