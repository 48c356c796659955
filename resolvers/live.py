"""Subscriptions: seatUpdates and waitlistPosition, fed by the process's pub/sub hub.

Each resolver is a coroutine that checks the request (who asks, which sections exist) and
only then returns the stream: a refusal raised there reaches the client as a
graphql-transport-ws `error` message with its code, and the socket stays open.
waitlistPosition speaks of one student, so it lasts only as long as the token that opened
it: when the token lapses the stream ends with UNAUTHENTICATED ("token expired"), and the
client subscribes again with a fresh one. seatUpdates shows counts only and needs no token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from uuid import UUID

from domain.errors import BadInput, NotFound, Unauthenticated
from domain.live import RESYNC, SeatFeed, SectionEvent, Standing, WaitlistStatus, WaitlistWatch
from domain.model import SeatState
from domain.registration import authorize_read
from resolvers.context import Info
from schema.types import SeatUpdate, WaitlistUpdate

MAX_WATCHED_SECTIONS = 500


async def _snapshot(info: Info, section_ids: list[UUID]) -> list[SeatState]:
    states = await info.context.services.seats.states(section_ids)
    missing = [str(s) for s, state in zip(section_ids, states, strict=True) if state is None]
    if missing:
        raise NotFound(f"unknown section(s): {', '.join(missing)}", sectionIds=missing)
    return [s for s in states if s is not None]


async def seat_updates(info: Info, section_ids: list[UUID]) -> AsyncGenerator[SeatUpdate, None]:
    ids = list(dict.fromkeys(section_ids))
    if not 1 <= len(ids) <= MAX_WATCHED_SECTIONS:
        raise BadInput(f"sectionIds must name 1 to {MAX_WATCHED_SECTIONS} sections")
    await _snapshot(info, ids)
    return _seat_stream(info, ids)


async def _seat_stream(info: Info, ids: list[UUID]) -> AsyncGenerator[SeatUpdate, None]:
    live = info.context.services.live
    feed = SeatFeed()
    try:
        # Subscribe first, then read the snapshot: a change in between arrives as an event
        # and the version filter drops whichever copy is older.
        await live.watch(ids, feed)
        pending, resync = await _snapshot(info, ids), True
        while True:
            for state in feed.due(pending, resync):
                yield SeatUpdate.of(state)
            resync, pending = await feed.next()
            if resync:
                pending = await _snapshot(info, ids)
    finally:
        await live.unwatch(ids, feed)


def _update(section_id: UUID, student_id: UUID, standing: Standing) -> WaitlistUpdate:
    expires = standing.expires_ms
    return WaitlistUpdate(
        section_id=section_id,
        student_id=student_id,
        status=standing.status,
        position=standing.position if standing.status is WaitlistStatus.WAITING else None,
        reason=standing.reason,
        expires_at=None if expires is None else datetime.fromtimestamp(expires / 1000, tz=UTC),
    )


async def _standing(info: Info, student_id: UUID, section_id: UUID) -> Standing:
    standing = await info.context.services.seats.standing(student_id, section_id)
    if standing is None:
        raise NotFound(f"section {section_id} not found", sectionIds=[str(section_id)])
    return standing


async def waitlist_position(
    info: Info, student_id: UUID, section_id: UUID
) -> AsyncGenerator[WaitlistUpdate, None]:
    authorize_read(info.context.actor, student_id)
    await _standing(info, student_id, section_id)
    return _waitlist_stream(info, student_id, section_id)


async def _waitlist_stream(
    info: Info, student_id: UUID, section_id: UUID
) -> AsyncGenerator[WaitlistUpdate, None]:
    live = info.context.services.live
    watch = WaitlistWatch(student_id, Standing(WaitlistStatus.NOT_WAITLISTED))
    expires = info.context.token_expires_at()
    try:
        await live.watch([section_id], watch)
        watch.standing = await _standing(info, student_id, section_id)
        yield _update(section_id, student_id, watch.standing)
        while not watch.standing.final:
            if await _advance(info, watch, section_id, expires):
                yield _update(section_id, student_id, watch.standing)
    finally:
        await live.unwatch([section_id], watch)


async def _advance(
    info: Info, watch: WaitlistWatch, section_id: UUID, expires: float | None
) -> bool:
    """Apply the next event (or re-read after a resync); True if the standing changed.
    Raises Unauthenticated when the token lapses first."""
    try:
        left = None if expires is None else max(expires - time.time(), 0.0)
        item = await asyncio.wait_for(watch.next(), left)  # a queue: safe to cancel
    except TimeoutError:
        raise Unauthenticated("token expired; subscribe again with a fresh token") from None
    if item is not RESYNC:
        assert isinstance(item, SectionEvent)
        return watch.apply(item) is not None
    fresh = await _standing(info, watch.student_id, section_id)
    changed = (fresh.status, fresh.position) != (watch.standing.status, watch.standing.position)
    watch.standing = fresh
    return changed
