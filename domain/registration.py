"""Register and drop: the hot path. No Postgres here; seats, answers and eligibility come
from the ports the composition root hands in (Redis and an in-process cache)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from domain.errors import BadInput, Forbidden, NotEligible, NotFound, Unavailable
from domain.model import (
    ACTIVE,
    MAX_SECTIONS_PER_REQUEST,
    Actor,
    DropAnswer,
    RegisterAnswer,
    Rejection,
)
from domain.ports import IdempotencyStore, SeatStore, StudentDirectory

MAX_IDEMPOTENCY_KEY_LENGTH = 128


def authorize(actor: Actor, student_id: UUID) -> None:
    """A student acts only for themself; staff act for anyone."""
    if not actor.is_staff and actor.subject != str(student_id):
        raise Forbidden("students may act only for themselves")


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


@dataclass(slots=True)
class Registrar:
    seats: SeatStore
    answers: IdempotencyStore
    students: StudentDirectory

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
        if idempotency_key is None:
            return await self._register(student_id, section_ids, request_id)
        print_ = fingerprint("register", student_id, *section_ids)
        earlier = await self.answers.begin(student_id, idempotency_key, print_)
        if earlier is not None:
            if not isinstance(earlier, RegisterAnswer):
                raise BadInput("idempotencyKey was used for another operation")
            return earlier
        try:
            answer = await self._register(student_id, section_ids, request_id)
        except BaseException:
            await self.answers.abandon(student_id, idempotency_key)
            raise
        await self.answers.finish(student_id, idempotency_key, print_, answer)
        return answer

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
        if idempotency_key is None:
            return await self._drop(student_id, section_id, request_id)
        print_ = fingerprint("drop", student_id, section_id)
        earlier = await self.answers.begin(student_id, idempotency_key, print_)
        if earlier is not None:
            if not isinstance(earlier, DropAnswer):
                raise BadInput("idempotencyKey was used for another operation")
            return earlier
        try:
            answer = await self._drop(student_id, section_id, request_id)
        except BaseException:
            await self.answers.abandon(student_id, idempotency_key)
            raise
        await self.answers.finish(student_id, idempotency_key, print_, answer)
        return answer

    async def _register(
        self, student_id: UUID, section_ids: Sequence[UUID], request_id: str
    ) -> RegisterAnswer:
        await self._check_eligible(student_id)
        results = await self.seats.register(student_id, section_ids, request_id)
        if all(r.reason == Rejection.UNAVAILABLE for r in results):
            raise Unavailable("seat state is being rebuilt; try again shortly")
        return RegisterAnswer(student_id, tuple(results))

    async def _drop(self, student_id: UUID, section_id: UUID, request_id: str) -> DropAnswer:
        if await self.students.enrollment_status(student_id) is None:
            raise NotFound(f"student {student_id} not found")
        answer = await self.seats.drop(student_id, section_id, request_id)
        if answer is None:
            raise NotFound(f"section {section_id} not found")
        return answer

    async def _check_eligible(self, student_id: UUID) -> None:
        status = await self.students.enrollment_status(student_id)
        if status is None:
            raise NotFound(f"student {student_id} not found")
        if status != ACTIVE:
            raise NotEligible(f"student is {status}, not active", enrollmentStatus=status)
