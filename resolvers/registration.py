"""register, drop, swap and offers: the hot path's GraphQL entry points."""

from __future__ import annotations

from uuid import UUID

from resolvers.context import Info
from schema.rules import SwapInput, SwapPayload
from schema.types import ClaimPayload, DropInput, DropPayload, RegisterInput, RegisterPayload
from schema.unset import given


async def register(info: Info, input: RegisterInput) -> RegisterPayload:
    ctx = info.context
    answer = await ctx.services.registrar.register(
        await ctx.admitted_actor(),
        input.student_id,
        input.section_ids,
        given(input.idempotency_key),
        ctx.request_id,
    )
    return RegisterPayload.of(answer)


async def drop(info: Info, input: DropInput) -> DropPayload:
    ctx = info.context
    answer = await ctx.services.registrar.drop(
        await ctx.admitted_actor(),
        input.student_id,
        input.section_id,
        given(input.idempotency_key),
        ctx.request_id,
    )
    return DropPayload.of(answer)


async def swap(info: Info, input: SwapInput) -> SwapPayload:
    ctx = info.context
    answer = await ctx.services.registrar.swap(
        await ctx.admitted_actor(),
        input.student_id,
        input.drop_section_id,
        input.add_section_id,
        given(input.idempotency_key),
        ctx.request_id,
    )
    return SwapPayload.of(answer)


async def claim_seat(info: Info, student_id: UUID, section_id: UUID) -> ClaimPayload:
    ctx = info.context
    status = await ctx.services.registrar.claim_seat(
        await ctx.admitted_actor(), student_id, section_id, ctx.request_id
    )
    return ClaimPayload(student_id=student_id, section_id=section_id, status=status)


async def decline_offer(info: Info, student_id: UUID, section_id: UUID) -> ClaimPayload:
    ctx = info.context
    status = await ctx.services.registrar.decline_offer(
        await ctx.admitted_actor(), student_id, section_id, ctx.request_id
    )
    return ClaimPayload(student_id=student_id, section_id=section_id, status=status)
