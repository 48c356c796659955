"""Storage-layer variants, in this process, 200 concurrent tasks, no HTTP:

- the bare register.lua via EVALSHA (redis-py asyncio, the product's client settings): the
  most one Python process gets out of the script, with no domain around it;
- the domain's Registrar.register (the product's composition root: Container.build);
- the naive Postgres register (bench/naive.py) on an asyncpg pool.

Every call registers a different student (or student and section pair) for the first time,
so each one takes the whole path: a seat or a waitlist place, the job, the event.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from bench.measure import Run, closed_loop
from bench.naive import RowLockRegistrar
from domain.model import Actor, Role
from infrastructure.container import Container

CONCURRENCY = 200


@dataclass
class Answers:
    """The last answer per (student, section): what the lost check compares with
    Postgres once the streams are drained."""

    last: dict[tuple[UUID, UUID], str] = field(default_factory=dict)

    def record(self, student: UUID, section: UUID, outcome: str) -> None:
        if outcome in ("ENROLLED", "WAITLISTED", "DROPPED", "LEFT_WAITLIST"):
            self.last[(student, section)] = outcome


async def bare_script(
    container: Container, section: UUID, students: Sequence[UUID], seconds: float
) -> tuple[Run, Answers]:
    keys = container.keys.section(section)
    sha = container.scripts.register.sha
    head = (*keys.script_keys,)
    evalsha = container.redis.evalsha
    answers = Answers()
    sid, channel = str(section), keys.channel

    async def call(student: UUID) -> Iterable[str]:
        outcome = (await evalsha(sha, len(head), *head, str(student), sid, channel, ""))[0]
        answers.record(student, section, outcome)
        return (outcome,)

    await container.redis.script_load(container.scripts.register.script)
    run = await closed_loop(call, iter(students), CONCURRENCY, seconds)
    return run, answers


async def domain_register(
    container: Container, work: Iterator[tuple[UUID, list[UUID]]], seconds: float
) -> tuple[Run, Answers]:
    registrar = container.registrar
    answers = Answers()

    async def call(item: tuple[UUID, list[UUID]]) -> Iterable[str]:
        student, sections = item
        actor = Actor(str(student), Role.STUDENT)
        answer = await registrar.register(actor, student, sections)
        outcomes = []
        for result in answer.results:
            answers.record(student, result.section_id, result.outcome.value)
            outcomes.append(result.outcome.value)
        return outcomes

    return await closed_loop(call, work, CONCURRENCY, seconds), answers


async def row_lock_register(
    registrar: RowLockRegistrar, section: UUID, students: Sequence[UUID], seconds: float
) -> Run:
    async def call(student: UUID) -> Iterable[str]:
        answer = await registrar.register(Actor(str(student), Role.STUDENT), student, [section])
        return [r.outcome.value for r in answer.results]

    return await closed_loop(call, iter(students), CONCURRENCY, seconds)
