"""Subscriptions: seatUpdates and waitlistPosition, fed by the process's pub/sub hub."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from uuid import UUID

from domain.errors import BadInput, NotFound
from domain.live import RESYNC, SeatFeed, SectionEvent, Standing, WaitlistStatus, WaitlistWatch
from domain.model import SeatState
from domain.registration import authorize
from schema.types import Info, SeatUpdate, WaitlistUpdate

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
    await _snapshot(info, ids)  # refuse unknown sections before subscribing
    live = info.context.services.live
    feed = SeatFeed()
    # Subscribe first, then read the snapshot: a change in between arrives as an event
    # and the version filter drops whichever copy is older.
    await live.watch(ids, feed)
    try:
        pending = await _snapshot(info, ids)
        while True:
            for state in pending:
                if feed.fresh(state):
                    feed.mark_sent(state)
                    yield SeatUpdate.of(state)
            resync, pending = await feed.next()
            if resync:
                pending = await _snapshot(info, ids)
    finally:
        await live.unwatch(ids, feed)


def _update(section_id: UUID, student_id: UUID, standing: Standing) -> WaitlistUpdate:
    return WaitlistUpdate(
        section_id=section_id,
        student_id=student_id,
        status=standing.status,
        position=standing.position,
    )


async def _standing(info: Info, student_id: UUID, section_id: UUID) -> Standing:
    standing = await info.context.services.seats.standing(student_id, section_id)
    if standing is None:
        raise NotFound(f"section {section_id} not found")
    return standing


async def waitlist_position(
    info: Info, student_id: UUID, section_id: UUID
) -> AsyncGenerator[WaitlistUpdate, None]:
    authorize(info.context.actor, student_id)
    live = info.context.services.live
    watch = WaitlistWatch(student_id, Standing(WaitlistStatus.NOT_WAITLISTED))
    await live.watch([section_id], watch)
    try:
        watch.standing = await _standing(info, student_id, section_id)
        yield _update(section_id, student_id, watch.standing)
        while not watch.standing.final:
            item = await watch.next()
            if item is RESYNC:
                fresh = await _standing(info, student_id, section_id)
                changed = (fresh.status, fresh.position) != (
                    watch.standing.status,
                    watch.standing.position,
                )
                watch.standing = fresh
                if not changed:
                    continue
            else:
                assert isinstance(item, SectionEvent)
                if watch.apply(item) is None:
                    continue
            yield _update(section_id, student_id, watch.standing)
    finally:
        await live.unwatch([section_id], watch)
