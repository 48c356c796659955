"""Register and drop: the hot path. No Postgres here; seats, answers and eligibility come
from the ports the composition root hands in (Redis and an in-process cache)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar
from uuid import UUID, uuid4

from domain.errors import BadInput, Forbidden, NotFound, Unavailable
from domain.live import WaitlistStatus
from domain.model import (
    MAX_SECTIONS_PER_REQUEST,
    Actor,
    DropAnswer,
    RegisterAnswer,
    Rejection,
    SwapAnswer,
)
from domain.ports import (
    IdempotencyStore,
    RegistrationOutcomes,
    StudentDirectory,
    Unobserved,
)
from domain.promotion import Promotion
from domain.seating import Seating, require_eligible

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_LENGTH = 128


def authorize(actor: Actor, student_id: UUID) -> None:
    """A student acts only for themself; staff act for anyone."""
    if not actor.is_staff and actor.subject != str(student_id):
        raise Forbidden("students may act only for themselves")


def authorize_read(actor: Actor, student_id: UUID) -> None:
    """A student reads only their own records; staff and advisors read anyone's."""
    if not actor.reads_any_student and actor.subject != str(student_id):
        raise Forbidden("students may see only their own records")


def check_sections(section_ids: Sequence[UUID]) -> None:
    if not section_ids:
        raise BadInput("sectionIds must name at least one section")
    if len(section_ids) > MAX_SECTIONS_PER_REQUEST:
        raise BadInput(f"sectionIds may name at most {MAX_SECTIONS_PER_REQUEST} sections")
    if len(set(section_ids)) != len(section_ids):
        raise BadInput("sectionIds must not repeat a section")


def check_key(key: str | None) -> None:
    if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise BadInput(f"idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")


def fingerprint(operation: str, *ids: UUID) -> str:
    text = operation + ":" + ",".join(str(i) for i in ids)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def operation(student_id: UUID, key: str | None) -> str:
    """The operation a request's steps run under (lib/once.lua): derived from the
    idempotency key, so a retry with the key is the same operation and each step that
    already ran answers what it did instead of acting again; else fresh."""
    if key is None:
        return uuid4().hex
    return hashlib.blake2b(f"{student_id}|{key}".encode(), digest_size=16).hexdigest()


def unavailable_in(answer: RegisterAnswer | DropAnswer | SwapAnswer) -> bool:
    """Whether part of an answer was "try again": such an answer is never remembered."""
    if isinstance(answer, RegisterAnswer):
        return any(r.reason == Rejection.UNAVAILABLE for r in answer.results)
    return isinstance(answer, SwapAnswer) and answer.reason == Rejection.UNAVAILABLE


Answer = TypeVar("Answer", RegisterAnswer, DropAnswer, SwapAnswer)


@dataclass(slots=True)
class Registrar:
    """Register, drop and swap, once per idempotency key, and claim or decline an offer.
    `seating` takes and gives up the seats, with the registration rules checked or not;
    `promotion` settles offers. The composition root chooses both."""

    answers: IdempotencyStore
    students: StudentDirectory
    seating: Seating
    promotion: Promotion
    outcomes: RegistrationOutcomes = field(default_factory=Unobserved)

    async def register(
        self,
        actor: Actor,
        student_id: UUID,
        section_ids: Sequence[UUID],
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> RegisterAnswer:
        authorize(actor, student_id)
        check_sections(section_ids)
        check_key(idempotency_key)
        print_ = fingerprint("register", student_id, *section_ids)
        work = partial(self._register, student_id, section_ids, request_id)
        return await self._once(student_id, idempotency_key, print_, RegisterAnswer, work)

    async def drop(
        self,
        actor: Actor,
        student_id: UUID,
        section_id: UUID,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> DropAnswer:
        authorize(actor, student_id)
        check_key(idempotency_key)
        print_ = fingerprint("drop", student_id, section_id)
        work = partial(self._drop, student_id, section_id, request_id)
        return await self._once(student_id, idempotency_key, print_, DropAnswer, work)

    async def swap(
        self,
        actor: Actor,
        student_id: UUID,
        drop_section_id: UUID,
        add_section_id: UUID,
        idempotency_key: str | None = None,
        request_id: str = "",
    ) -> SwapAnswer:
        authorize(actor, student_id)
        check_key(idempotency_key)
        if drop_section_id == add_section_id:
            raise BadInput("dropSectionId and addSectionId must differ")
        print_ = fingerprint("swap", student_id, drop_section_id, add_section_id)
        work = partial(self.seating.swap, student_id, drop_section_id, add_section_id, request_id)
        return await self._once(student_id, idempotency_key, print_, SwapAnswer, work)

    async def _once(
        self,
        student_id: UUID,
        key: str | None,
        print_: str,
        kind: type[Answer],
        work: Callable[[str], Awaitable[Answer]],
    ) -> Answer:
        """Run `work`, or with an idempotency key answer as the first request did. A request
        that failed, or answered "try again" anywhere, leaves the key free: its retry is the
        same operation, so the steps that ran answer what they did (lib/once.lua)."""
        op = operation(student_id, key)
        if key is None:
            return await work(op)
        earlier = await self.answers.begin(student_id, key, print_)
        if earlier is not None:
            if not isinstance(earlier, kind):
                raise BadInput("idempotencyKey was used for another operation")
            return earlier
        try:
            answer = await work(op)
        except BaseException:
            await self.answers.abandon(student_id, key)
            raise
        if unavailable_in(answer):
            await self.answers.abandon(student_id, key)
        else:
            await self.answers.finish(student_id, key, print_, answer)
        return answer

    async def _register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str, op: str
    ) -> RegisterAnswer:
        await require_eligible(self.students, student_id)
        results = await self.seating.register(student_id, section_ids, request_id, op)
        if all(r.reason == Rejection.UNAVAILABLE for r in results):
            raise Unavailable("seat state is being rebuilt; try again shortly")
        answer = RegisterAnswer(student_id, tuple(results))
        self.outcomes.registered(answer)
        return answer

    async def _drop(
        self, student_id: UUID, section_id: UUID, request_id: str, op: str
    ) -> DropAnswer:
        if await self.students.enrollment_status(student_id) is None:
            self.outcomes.dropped(None)
            raise NotFound(f"student {student_id} not found")
        answer = await self.seating.drop(student_id, section_id, request_id, op)
        self.outcomes.dropped(None if answer is None else answer.outcome)
        if answer is None:
            raise NotFound(f"section {section_id} not found")
        return answer

    async def claim_seat(
        self, actor: Actor, student_id: UUID, section_id: UUID, request_id: str = ""
    ) -> WaitlistStatus:
        authorize(actor, student_id)
        await require_eligible(self.students, student_id)
        return await self.promotion.claim(student_id, section_id, request_id)

    async def decline_offer(
        self, actor: Actor, student_id: UUID, section_id: UUID, request_id: str = ""
    ) -> WaitlistStatus:
        authorize(actor, student_id)
        return await self.promotion.decline(student_id, section_id, request_id)
