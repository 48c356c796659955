"""One run of the explorer: a world and a Container of its own (key prefix, truncated
record), the decisions applied one by one with the invariants checked after each, then
the end: the live finish, the dead are cancelled, time passes every deadline and the
sweeper settles what is left, the state at rest is checked, the streams are drained and
Postgres is compared."""

from __future__ import annotations

import asyncio
import gc
import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.changes import parse_position
from domain.errors import DomainError
from infrastructure.container import Container
from infrastructure.settings import Settings
from tests.conftest import _truncate, forget_keys
from tests.explorer.actions import Actions, Spec
from tests.explorer.checks import (
    Violation,
    check_answers,
    check_at_rest,
    check_sections,
    check_students,
)
from tests.explorer.decisions import (
    Chooser,
    Decision,
    Grant,
    Kill,
    RunUntil,
    Scripted,
    Seeded,
    Sleep,
    Start,
)
from tests.explorer.faults import Fault, faulty_wire
from tests.explorer.gate import gate_services
from tests.explorer.model import Model
from tests.explorer.record import check_record
from tests.explorer.scheduler import Action, Scheduler, Stuck
from tests.explorer.settings import FOUND
from tests.explorer.snapshot import Snapshot, take
from tests.explorer.trace import Trace
from tests.explorer.world import Lifetimes, World, install, plan_world

REST_ROUNDS = 8  # sweeps after the run: an offer expiring passes the seat on, line by line
DEADLINE_MARGIN_MS = 5
RELOADS = ("rebuild.reload", "lose.ensure")  # the operator's steps that reload from Postgres


@dataclass(frozen=True, slots=True)
class Found:
    """A violation, and the step after which it was seen (number, and action and gate)."""

    violation: Violation
    step: int
    at: str

    def describe(self, trace: Trace) -> str:
        return f"{trace.brief(str(self.violation))} (step {self.step}: {self.at})"


class Stop(Exception):
    """The first violation was found (and the run is not collecting)."""


@dataclass
class Outcome:
    seed: int
    world: World
    trace: Trace
    decisions: list[Decision]
    violations: list[Found] = field(default_factory=list)
    tolerated: dict[str, Found] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def first(self) -> Violation | None:
        return self.violations[0].violation if self.violations else None

    def summary(self) -> str:
        found = "; ".join(f.describe(self.trace) for f in self.violations)
        seen = "".join(f"\n  tolerated {f.describe(self.trace)}" for f in self.tolerated.values())
        return (
            f"seed {self.seed}: {found or 'no violation'}; {self.trace.steps} steps, "
            f"{len(self.decisions)} decisions, {self.seconds:.2f}s{seen}"
        )

    def report(self) -> str:
        return f"{self.summary()}\n{self.trace.text()}"


class Run:
    def __init__(
        self,
        settings: Settings,
        seed: int,
        *,
        world: World | None = None,
        script: Iterable[Decision] | None = None,
        tolerate: Iterable[str] = (),
        collect: bool = False,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        assert settings.database_url is not None, "the explorer compares Postgres at the end"
        self.settings, self.seed, self.database_url = settings, seed, settings.database_url
        self.rng = random.Random(seed)
        self.world = world or plan_world(self.rng)
        self.script = None if script is None else list(script)
        self.tolerate = frozenset(tolerate)
        self.collect = collect
        self.lifetimes = lifetimes or Lifetimes()
        self.trace = Trace(self.world.names())
        self.scheduler = Scheduler(self.trace)
        self.model = Model(self.world)
        self.outcome = Outcome(seed, self.world, self.trace, [])
        self._seen: set[tuple[str, str]] = set()
        self._failed: set[int] = set()
        self._numbers = 1000  # actions of the end phase

    async def __call__(self) -> Outcome:
        started = time.perf_counter()
        prefix = f"x{uuid.uuid4().hex[:10]}:"
        settings = self.settings.model_copy(update={"key_prefix": prefix})
        await _truncate(self.database_url)
        self.container = Container.build(settings)
        try:
            await install(self.world, self.container, self.lifetimes)
            gate_services(
                self.scheduler,
                self.container.registrar,
                self.container.catalog,
                self.container.rules_admin,
            )
            self.actions = Actions(
                self.container, self.world, self.model, self.scheduler, self.lifetimes
            )
            with faulty_wire():
                await self._explore()
        finally:
            await self.scheduler.bury()
            await forget_keys(self.container)
            await self.container.close()
            # Now, not at an unlucky later moment: a lost reply leaves futures whose
            # exception nobody retrieved (scripts.py Coalescer), and their finalizers log.
            # Collected inside pytest's next import, that nested the AST conversion of
            # Python 3.11.7 and failed it ("AST constructor recursion depth mismatch").
            gc.collect()
        self.outcome.seconds = time.perf_counter() - started
        return self.outcome

    async def _explore(self) -> None:
        chooser: Chooser
        if self.script is None:
            budget = self.rng.randint(10, 18)
            # The seeds that found a race before rule changes were modelled replay as then.
            rule_changes = self.seed not in FOUND
            chooser = Seeded(self.rng, self.world, self.model, self.scheduler, budget, rule_changes)
            order = "by priority" if chooser.by_priority else "uniform"
            self.trace.event(f"order: {order}; {chooser.swarm.describe()}")
        else:
            chooser = Scripted(self.script, self.scheduler)
        try:
            await self._look()
            while (decision := chooser.next()) is not None:
                self.outcome.decisions.append(decision)
                await self._apply(decision)
            await self._finish()
        except Stop:
            pass
        except Stuck as exc:
            self._judge([Violation("stuck", "scheduler", str(exc))], stop=False)

    async def _apply(self, decision: Decision) -> None:
        if isinstance(decision, Start):
            spec = decision.spec
            work = self.actions.work(spec, decision.number)
            label = spec.describe(self.world)
            self.scheduler.start(decision.number, label, work, spec.killable, spec.faultable)
            await self.scheduler.settled()
            await self._look()
        elif isinstance(decision, Grant):
            await self._grant(self.scheduler.actions[decision.number], decision)
        elif isinstance(decision, Kill):
            self.scheduler.kill(self.scheduler.actions[decision.number])
        elif isinstance(decision, Sleep):
            await self._pass_deadlines()
        else:
            await self._run_until(decision)

    async def _grant(self, action: Action, decision: Grant | None = None) -> None:
        await self.scheduler.grant(action, decision.fault if decision else Fault.NONE)
        await self._look()

    async def _run_until(self, decision: RunUntil) -> None:
        action = self.scheduler.actions[decision.number]
        while action.runnable:
            assert action.parked is not None
            if decision.label and action.parked.startswith(decision.label):
                return
            await self._grant(action)
        # A script whose gate no longer exists would drive another interleaving and pass.
        assert not decision.label, f"{action.name} ended without reaching {decision.label}"

    async def _finish(self) -> None:
        self.trace.event("-- the end: live actions finish, oldest first; the dead are cancelled")
        while runnable := self.scheduler.runnable():
            await self._grant(min(runnable, key=lambda a: a.number))
        await self.scheduler.bury()
        await self._look()
        snap = await self._rest()
        self._judge(check_at_rest(snap, self.world, self.model))
        await self.actions.drain()
        found = await check_record(self.container, self.database_url, self.world, self.model)
        self._judge(found)

    async def _rest(self) -> Snapshot:
        """Time passes every deadline and the sweeper runs, until nothing is held (an
        offer that lapses passes its seat on, to an offer with a deadline of its own)."""
        for _ in range(REST_ROUNDS):
            await self._pass_deadlines()
            await self._run_to_end(Spec("sweep"))
            await self._run_to_end(Spec("persist"))
            snap = await take(self.container, self.world)
            if not snap.reservations and not any(s.held for s in snap.sections.values()):
                break
        return snap

    async def _pass_deadlines(self) -> None:
        """Sleep until every deadline pending now is past, by Redis's clock (the scripts')."""
        keys, redis = self.container.keys, self.container.redis
        pipe = redis.pipeline(transaction=False)
        pipe.time()
        for shard in range(keys.shards):
            pipe.zrange(keys.held_index(shard), -1, -1, withscores=True)
            pipe.zrange(keys.reservations(shard), -1, -1, withscores=True)
        (seconds, micros), *latest = await pipe.execute()
        now = seconds * 1000 + micros // 1000
        due = max((score for found in latest for _, score in found), default=now)
        wait = max(0, int(due) - now + DEADLINE_MARGIN_MS)
        self.trace.event(f"time passes: {wait} ms, past every deadline pending")
        await asyncio.sleep(wait / 1000)

    async def _run_to_end(self, spec: Spec) -> None:
        self._numbers += 1
        number = self._numbers
        self.scheduler.start(
            number,
            spec.describe(self.world),
            self.actions.work(spec, number),
            spec.killable,
            spec.faultable,
        )
        await self.scheduler.settled()
        await self._look()
        await self._run_until(RunUntil(number))

    async def _look(self) -> Snapshot:
        snap = await take(self.container, self.world)
        found = await self._vanished(snap)
        self.model.replay(snap)
        if self.trace.last.endswith(RELOADS):
            # Holdings were re-derived from the record, not moved by a script: the other
            # invariants judge them (an enrolled section reloaded as W is not counting).
            self.model.holding.clear()
        found += check_sections(snap, self.world, self.model)
        found += check_students(snap, self.world, self.model)
        found += check_answers(self.model)
        found += self._errors()
        self._judge(found)
        return snap

    async def _vanished(self, snap: Snapshot) -> list[Violation]:
        """Entries gone from a stream must be in Postgres (at or below its watermark)."""
        gone = self.model.vanished(snap)
        if not gone:
            return []
        marks = await self.container.snapshot.watermarks()
        found = []
        for shard, positions in gone.items():
            mark = parse_position(marks.get(shard, "0-0"))
            lost = [p for p in positions if p > mark]
            if lost:
                found.append(
                    Violation(
                        "change-lost",
                        f"shard {shard}",
                        f"{len(lost)} entries left the stream unpersisted (watermark {mark})",
                    )
                )
        return found

    def _errors(self) -> list[Violation]:
        """An action that failed with anything but a refusal (a client would see INTERNAL)."""
        found = []
        for action in self.scheduler.actions.values():
            error = action.error
            if error is None or action.number in self._failed:
                continue
            self._failed.add(action.number)
            if not isinstance(error, DomainError):
                found.append(Violation("internal-error", action.name, action.answer))
        return found

    def _judge(self, found: list[Violation], stop: bool = True) -> None:
        for violation in found:
            seen = Found(violation, self.trace.steps, self.trace.last)
            if violation.kind in self.tolerate:
                self.outcome.tolerated.setdefault(violation.kind, seen)
                continue
            if (violation.kind, violation.subject) in self._seen:
                continue
            self._seen.add((violation.kind, violation.subject))
            self.outcome.violations.append(seen)
            self.trace.event(f"VIOLATION {violation}")
        if self.outcome.violations and stop and not self.collect:
            raise Stop
