"""The seeded scheduler's mechanics: actions (requests and operator work) run as asyncio
tasks, and every gated call of theirs (gate.py) parks until the scheduler grants it.

Between two grants every live action is parked or finished, so the state in Redis is the
state "between steps" and the invariants are checked there. A killed action is never
granted again; when it is cancelled at the end, its remaining gated calls (an idempotency
`abandon` in a `finally`) raise CancelledError instead of running: a dead process runs
no clean-up either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from tests.explorer.faults import WIRE, Fault, Slot, spent
from tests.explorer.trace import Trace

CURRENT: ContextVar[Action | None] = ContextVar("explorer_action", default=None)
STEP_SECONDS = 10.0  # a step that takes longer is stuck (a lock, a poll that never ends)


class Stuck(Exception):
    """A granted step did not reach its next gate or its end in time."""


@dataclass(eq=False)
class Action:
    """A request or an operator's work, started by one decision."""

    number: int
    label: str
    killable: bool  # requests and sweeps die with their process; operator commands do not
    faultable: bool  # its calls go through redis-py on a request's connection
    task: asyncio.Task[None] | None = None
    parked: str | None = None  # the gated call it waits to make
    go: asyncio.Future[Fault] | None = None
    dead: bool = False  # never granted again: killed, or stopped when the run ends
    killed: bool = False
    answer: str = ""
    error: BaseException | None = None

    @property
    def name(self) -> str:
        return f"a{self.number}"

    @property
    def finished(self) -> bool:
        return self.task is not None and self.task.done()

    @property
    def runnable(self) -> bool:
        return self.parked is not None and not self.dead


@dataclass
class Scheduler:
    trace: Trace
    actions: dict[int, Action] = field(default_factory=dict)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(
        self,
        number: int,
        label: str,
        work: Callable[[], Awaitable[Any]],
        killable: bool = True,
        faultable: bool = True,
    ) -> Action:
        action = Action(number, label, killable, faultable)
        self.actions[number] = action
        action.task = asyncio.get_running_loop().create_task(self._run(action, work))
        action.task.add_done_callback(lambda _: self._changed.set())
        self.trace.event(f"start {action.name}: {label}")
        return action

    async def _run(self, action: Action, work: Callable[[], Awaitable[Any]]) -> None:
        CURRENT.set(action)  # this task's own context
        try:
            action.answer = self.trace.brief(await work())
        except asyncio.CancelledError:
            action.answer = "(died)" if action.killed else "(stopped: the run ended)"
        except Exception as exc:  # the answer a client would get: an error
            action.error = exc
            action.answer = f"error {type(exc).__name__}: {exc}"
        self.trace.event(f"end {action.name}: {action.answer}")

    async def checkpoint(self, label: str) -> Fault:
        """Park the running action at `label` until granted (its answer: the fault)."""
        action = CURRENT.get()
        if action is None:
            return Fault.NONE
        if action.dead:
            raise asyncio.CancelledError(f"{action.name} is dead")
        go: asyncio.Future[Fault] = asyncio.get_running_loop().create_future()
        action.parked, action.go = label, go
        self._changed.set()
        return await go

    async def step(self, label: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """One gated call: wait for the turn, run it (with the granted fault), log it."""
        fault = await self.checkpoint(label)
        action = CURRENT.get()
        if action is None:
            return await call()
        token = WIRE.set(Slot(fault))
        try:
            result = await call()
        except BaseException as exc:
            self.trace.reply(action, label, fault, spent(), error=exc)
            raise
        else:
            self.trace.reply(action, label, fault, spent(), result=result)
            return result
        finally:
            WIRE.reset(token)

    async def grant(self, action: Action, fault: Fault = Fault.NONE) -> None:
        """Let `action` make its parked call, and wait until everything is parked again."""
        go, label = action.go, action.parked
        assert go is not None and label is not None and not action.dead
        action.parked = action.go = None
        self.trace.grant(action, label, fault)
        go.set_result(fault)
        await self.settled()

    def kill(self, action: Action) -> None:
        action.dead = action.killed = True
        self.trace.event(f"{action.name} dies before {action.parked}")

    async def settled(self) -> None:
        deadline = asyncio.get_running_loop().time() + STEP_SECONDS
        while True:
            self._changed.clear()
            if all(a.finished or a.parked is not None for a in self.actions.values()):
                return
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(self._changed.wait(), max(left, 0.0))
            except TimeoutError:
                busy = [a.name for a in self.actions.values() if not a.finished and not a.parked]
                raise Stuck(f"no gate reached in {STEP_SECONDS}s by {busy}") from None

    async def bury(self) -> None:
        """Cancel every unfinished action (the dead, or all when a run stops early): none
        of their gated calls runs any more."""
        waiting = []
        for action in self.actions.values():
            if action.task is not None and not action.task.done():
                action.dead = True
                action.task.cancel()
                waiting.append(action.task)
        if waiting:
            await asyncio.wait(waiting, timeout=STEP_SECONDS)

    def runnable(self) -> list[Action]:
        return [a for a in self.actions.values() if a.runnable]

    def live(self) -> list[Action]:
        return [a for a in self.actions.values() if not a.finished and not a.dead]
