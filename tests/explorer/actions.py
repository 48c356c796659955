"""What an action does: the requests (register, drop, swap, claimSeat, declineOffer, a
staff capacity change), the sweeper, and the operator's and workers' work (persist, a
rebuild of every shard, the loss of one shard's node). Requests go through the product's
services, whose Redis adapters are gated; the operator's work parks at explicit
checkpoints between its phases. Every answer a client gets is recorded in the model with
the stream entries it promises."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from domain.errors import Unavailable
from domain.leases import Fenced, Lease
from domain.model import (
    Actor,
    DropAnswer,
    DropOutcome,
    RegisterAnswer,
    RegisterOutcome,
    Role,
    SwapAnswer,
    SwapOutcome,
)
from infrastructure.cli.worker import make_persister
from infrastructure.container import Container
from infrastructure.redis.keys import shard_of
from tests.conftest import STAFF
from tests.explorer.model import ENROLLED_NOW, Acknowledged, Model, Need, Position
from tests.explorer.scheduler import Scheduler
from tests.explorer.world import Lifetimes, World, shorten

REQUESTS = ("register", "drop", "swap", "claim", "decline", "capacity")
OPERATOR = ("rebuild", "lose")  # never killed nor faulted; one at a time (they take a lock)
# Staff's rule changes (a course's credits): never killed nor faulted, one at a time and
# never beside a rebuild (docs/holdings.md "Rule changes": both are known gaps).
RULE_CHANGES = ("credits",)
BATCH = 1000
WORKER = "explorer"
LEASE_MS = 600_000  # the explorer's one worker never loses a lease by time
# The change a register answer stands for, and the one an ALREADY_* answer denies.
MADE = {RegisterOutcome.ENROLLED: "enroll", RegisterOutcome.WAITLISTED: "join"}
ALREADY = {RegisterOutcome.ALREADY_ENROLLED: "enroll", RegisterOutcome.ALREADY_WAITLISTED: "join"}


T = TypeVar("T")


async def retried(request: Callable[[], Awaitable[T]]) -> T:
    """A client that is told "try again" (UNAVAILABLE) tries once more with the same
    idempotency key: the same operation, whose steps that ran answer what they did."""
    try:
        return await request()
    except Unavailable:
        return await request()


@dataclass(frozen=True, slots=True)
class Spec:
    """What an action is: a kind and its student, sections (indexes in the world) and
    new total (capacity), or the new credits of the section's course (credits)."""

    kind: str
    student: int = -1
    sections: tuple[int, ...] = ()
    total: int = 0

    def describe(self, world: World) -> str:
        who = f" {world.students[self.student].name}" if self.student >= 0 else ""
        where = ",".join(world.sections[i].name for i in self.sections)
        more = f" -> {self.total} seats" if self.kind == "capacity" else ""
        if self.kind == "credits":
            more = f" -> {self.total} credits"
        if self.kind == "lose":
            return f"lose the node of {where}'s shard"
        return f"{self.kind}{who} {where}{more}".rstrip()

    @property
    def killable(self) -> bool:
        return self.kind not in (*OPERATOR, *RULE_CHANGES) and self.kind != "persist"

    @property
    def faultable(self) -> bool:
        return self.killable


class Actions:
    def __init__(
        self,
        container: Container,
        world: World,
        model: Model,
        scheduler: Scheduler,
        lifetimes: Lifetimes,
    ) -> None:
        self.container = container
        self.world = world
        self.model = model
        self.scheduler = scheduler
        self.lifetimes = lifetimes
        self.worker = make_persister(container, WORKER)
        self.leases: dict[int, Lease] = {}
        self.since: dict[str, dict[int, Position]] = {}  # action -> the streams when it began

    def work(self, spec: Spec, number: int) -> Callable[[], Awaitable[Any]]:
        name = f"a{number}"
        self.since[name] = dict(self.model.cursor)
        student = self.world.students[spec.student].id if spec.student >= 0 else None
        sections = [self.world.sections[i].id for i in spec.sections]
        runs: dict[str, Callable[[], Awaitable[Any]]] = {
            "register": lambda: self._register(name, student, sections),
            "drop": lambda: self._drop(name, student, sections[0]),
            "swap": lambda: self._swap(name, student, sections[0], sections[1]),
            "claim": lambda: self._claim(name, student, sections[0]),
            "decline": lambda: self._decline(name, student, sections[0]),
            "capacity": lambda: self._capacity(name, sections[0], spec.total),
            "credits": lambda: self._credits(sections[0], spec.total),
            "sweep": self._sweep,
            "persist": self._persist,
            "rebuild": self._rebuild,
            "lose": lambda: self._lose(sections[0]),
        }
        return runs[spec.kind]

    def _answered(
        self, name: str, answer: Any, needs: list[Need], denies: Sequence[Need] = ()
    ) -> None:
        if needs or denies:
            text = self.scheduler.trace.brief(answer)
            since = self.since.get(name, {})
            answer_ = Acknowledged(name, name, text, tuple(needs), tuple(denies), since)
            self.model.acknowledge(answer_)

    async def _register(self, name: str, student: Any, sections: list[UUID]) -> RegisterAnswer:
        registrar = self.container.registrar
        answer = await retried(
            lambda: registrar.register(
                Actor(str(student), Role.STUDENT), student, sections, f"key-{name}", name
            )
        )
        me = str(student)
        needs = [(MADE[r.outcome], r.section_id, me) for r in answer.results if r.outcome in MADE]
        denies = [
            (ALREADY[r.outcome], r.section_id, me) for r in answer.results if r.outcome in ALREADY
        ]
        self._answered(name, answer, needs, denies)
        return answer

    async def _drop(self, name: str, student: Any, section: UUID) -> DropAnswer:
        answer = await retried(
            lambda: self.container.registrar.drop(
                Actor(str(student), Role.STUDENT), student, section, f"key-{name}", name
            )
        )
        me = str(student)
        if answer.outcome is DropOutcome.DROPPED:
            self._answered(name, answer, [("drop", section, me)])
        elif answer.outcome is DropOutcome.LEFT_WAITLIST:
            self._answered(name, answer, [("leave", section, me)])
        else:
            self._answered(name, answer, [], [("drop", section, me), ("leave", section, me)])
        return answer

    async def _swap(self, name: str, student: Any, old: UUID, new: UUID) -> SwapAnswer:
        answer = await retried(
            lambda: self.container.registrar.swap(
                Actor(str(student), Role.STUDENT), student, old, new, f"key-{name}", name
            )
        )
        me = str(student)
        if answer.outcome is SwapOutcome.SWAPPED:
            self._answered(name, answer, [("enroll", new, me), ("drop", old, me)])
        elif answer.outcome is SwapOutcome.WAITLISTED_KEEPING_CURRENT:
            self._answered(name, answer, [("join", new, me)])
        else:
            self._answered(name, answer, [], [("enroll", new, me), ("join", new, me)])
        return answer

    async def _claim(self, name: str, student: Any, section: UUID) -> str:
        status = await self.container.registrar.claim_seat(
            Actor(str(student), Role.STUDENT), student, section, name
        )
        if status == "ENROLLED":  # perhaps taken before: enrolled is what it promises
            self._answered(name, status, [(ENROLLED_NOW, section, str(student))])
        else:
            self._answered(name, status, [], [("promote", section, str(student))])
        return status

    async def _decline(self, name: str, student: Any, section: UUID) -> str:
        status = await self.container.registrar.decline_offer(
            Actor(str(student), Role.STUDENT), student, section, name
        )
        if status == "REMOVED":
            self._answered(name, status, [("leave", section, str(student))])
        else:
            self._answered(name, status, [], [("leave", section, str(student))])
        return status

    async def _capacity(self, name: str, section: UUID, total: int) -> str:
        await self.container.catalog.set_section_capacity(STAFF, section, total, name)
        self._answered(name, f"{total} seats", [("capacity", section, "")])
        return f"{total} seats"

    async def _credits(self, section: UUID, credits: int) -> str:
        """Staff set the credits of the section's course (every section of it, and every
        holding of those, follows: docs/holdings.md "Rule changes")."""
        course = self.world.section(section).course_id
        await self.container.rules_admin.set_course_rules(STAFF, course, float(credits), None)
        self.model.credits[course] = float(credits)
        return f"{credits} credits"

    async def _sweep(self) -> str:
        settled = await self.container.promoter.sweep(list(range(self.container.keys.shards)))
        return f"settled {settled}"

    async def _persist(self) -> str:
        await self.scheduler.checkpoint("worker.persist")
        return f"persisted {await self.persist()}"

    async def persist(self) -> int:
        """One worker pass over the shards with entries: what the streams hold goes to
        Postgres. Reads only where entries wait: a blocking read costs Redis's timer tick."""
        stream, count = self.worker.stream, 0
        lag = await self.container.stream.lag(self.container.keys.shards)
        shards: Any = lag["shards"]
        for shard, waiting in shards.items():
            lease = await self._lease(shard)
            changes = await stream.read(lease, BATCH, True, 0) if waiting["pending"] else []
            if waiting["unapplied"] > waiting["pending"]:
                changes += await stream.read(lease, BATCH, False, 1)
            if changes:
                await self.worker.persist(lease, changes)
                count += len(changes)
        return count

    async def _lease(self, shard: int) -> Lease:
        """This worker's lease of the shard, taken over as a worker does (fenced in
        Postgres, then adopting what earlier owners held); taken anew above the epoch
        Postgres holds when a lost shard took the lease and its counter with it."""
        stream = self.worker.stream
        lease = self.leases.get(shard)
        if lease is not None and await stream.renew(lease, LEASE_MS):
            return lease
        above = 0
        for _ in range(3):
            taken = await stream.acquire(shard, WORKER, LEASE_MS, above)
            assert taken is not None, f"shard {shard}'s lease is held by another worker"
            try:
                await self.worker.changes.take_over(taken)
            except Fenced as fenced:
                await stream.release(taken)
                above = fenced.current or 0
                continue
            await stream.prepare(shard)
            await stream.adopt(taken)
            self.leases[shard] = taken
            return taken
        raise AssertionError(f"shard {shard} could not be taken over")

    async def drain(self) -> None:
        """Persist until nothing waits in the streams (as `rebuild-cache` waits for)."""
        for _ in range(10):
            await self.persist()
            lag = await self.container.stream.lag(self.container.keys.shards)
            if lag["unapplied"] == 0 and lag["pending"] == 0:
                return
        raise AssertionError(f"the streams do not drain: {lag}")

    async def _rebuild(self) -> str:
        """`coursereg rebuild-cache`: markers down, drain, reload every shard, markers up."""
        await self.scheduler.checkpoint("rebuild.start")

        async def settle(*_: object) -> bool:  # the shards' cut-off points: drained whole
            await self.scheduler.checkpoint("rebuild.reload")
            await self.drain()
            return True

        report = await self.container.state.rebuild(settle)
        await shorten(self.world, self.container, self.lifetimes)
        return f"rebuilt {report.sections if report else 0} sections"

    async def _lose(self, section: UUID) -> str:
        """A cluster node lost, empty, with what its streams held persisted: every key of
        the section's shard goes (ready marker included), and with them the slots of the
        students whose sweeper index lived there (their node-mates here), with the mark
        that every student is loaded; then the cold start reloads what was lost, once the
        other shards have persisted what they hold (a worker pass here)."""
        keys = self.container.keys
        shard = shard_of(section, keys.shards)
        await self.scheduler.checkpoint("lose.node")
        await self.drain()
        redis = self.container.redis
        tags = ["{shard-" + str(shard) + "}"]
        tags += [
            "{stu-" + str(s.id) + "}"
            for s in self.world.students
            if shard_of(s.id, keys.shards) == shard
        ]
        for tag in tags:
            async for key in redis.scan_iter(match=f"{keys.prefix}*{tag}*", count=1000):
                await redis.delete(key)
        await redis.delete(keys.students_loaded)
        await self.scheduler.checkpoint("lose.ensure")
        await self.drain()
        await self.container.state.ensure(wait_seconds=5)
        await shorten(self.world, self.container, self.lifetimes)
        return f"shard {shard} reloaded"
