"""register and drop: the hot path's GraphQL entry points."""

from __future__ import annotations

from schema.types import DropInput, DropPayload, Info, RegisterInput, RegisterPayload


def _key(value: str | None) -> str | None:
    return value if isinstance(value, str) else None


async def register(info: Info, input: RegisterInput) -> RegisterPayload:
    ctx = info.context
    answer = await ctx.services.registrar.register(
        ctx.actor, input.student_id, input.section_ids, _key(input.idempotency_key), ctx.request_id
    )
    return RegisterPayload.of(answer)


async def drop(info: Info, input: DropInput) -> DropPayload:
    ctx = info.context
    answer = await ctx.services.registrar.drop(
        ctx.actor, input.student_id, input.section_id, _key(input.idempotency_key), ctx.request_id
    )
    return DropPayload.of(answer)
