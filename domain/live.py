"""Live seat and waitlist updates for subscribers.

Events come from the seat scripts through pub/sub, which is at-most-once: a subscriber
keeps the newest version it has sent per section and never sends an older one, and after a
lost connection or a full queue it re-reads the current state (resync).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from domain.model import SeatState
from domain.wire import EventKind


@dataclass(frozen=True, slots=True)
class SectionEvent:
    """A change of one section, as published by the seat scripts."""

    state: SeatState
    kind: str  # domain.wire.EventKind, as published
    student_id: UUID | None = None
    left_rank: int = 0  # 1-based rank that left the waitlist (not by promotion), 0 if none
    promoted: tuple[UUID, ...] = ()  # students promoted from the head of the line, in order
    enrolled: UUID | None = None  # a student who claimed the seat held for them
    offered: tuple[UUID, ...] = ()  # students offered a seat (they stay in line)
    expires_ms: int | None = None  # when those offers lapse
    reason: str | None = None  # why `student_id` was removed from the line


class WaitlistStatus(StrEnum):
    WAITING = "WAITING"
    ENROLLED = "ENROLLED"
    REMOVED = "REMOVED"
    NOT_WAITLISTED = "NOT_WAITLISTED"
    OFFERED = "OFFERED"
    EXPIRED = "EXPIRED"


FINAL = frozenset(
    {
        WaitlistStatus.ENROLLED,
        WaitlistStatus.REMOVED,
        WaitlistStatus.NOT_WAITLISTED,
        WaitlistStatus.EXPIRED,
    }
)
IN_LINE = frozenset({WaitlistStatus.WAITING, WaitlistStatus.OFFERED})
LEFT_THE_LINE: dict[str, WaitlistStatus] = {
    EventKind.LEAVE: WaitlistStatus.REMOVED,
    EventKind.SKIP: WaitlistStatus.REMOVED,
    EventKind.DECLINE: WaitlistStatus.REMOVED,
    EventKind.EXPIRE: WaitlistStatus.EXPIRED,
}


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a student stands in one section."""

    status: WaitlistStatus
    position: int | None = None  # 1-based rank while in line (waiting or offered)
    version: int = 0  # the section's version this standing was read at
    reason: str | None = None  # why the student was removed from the line
    expires_ms: int | None = None  # when an offer lapses

    @property
    def final(self) -> bool:
        return self.status in FINAL


RESYNC = object()


class SeatFeed:
    """Listener of seatUpdates: a bounded queue of the events not yet sent, in order, so a
    subscriber that keeps up sees every change. One that falls behind (the queue past its
    bound) has it collapsed to the latest state per section: the current state of each
    section instead of a backlog."""

    def __init__(self, limit: int = 64) -> None:
        self.limit = limit
        self._bound = limit
        self._queue: list[SeatState] = []
        self._resync = False
        self._wake = asyncio.Event()
        self.sent: dict[UUID, int] = {}

    def deliver(self, channel: str, event: SectionEvent) -> None:
        self._queue.append(event.state)
        if len(self._queue) > self._bound:
            latest: dict[UUID, SeatState] = {}
            for state in self._queue:
                held = latest.get(state.section_id)
                if held is None or held.version < state.version:
                    latest[state.section_id] = state
            self._queue = list(latest.values())
            # Watching more sections than the bound: grow it, or every event would collapse.
            self._bound = max(self.limit, 2 * len(self._queue))
        self._wake.set()

    def resync(self) -> None:
        self._resync = True
        self._wake.set()

    async def next(self) -> tuple[bool, list[SeatState]]:
        """(resync wanted, the states not yet sent, oldest first)."""
        await self._wake.wait()
        self._wake.clear()
        resync, self._resync = self._resync, False
        queue, self._queue = self._queue, []
        return resync, [s for s in queue if self.fresh(s)]

    def fresh(self, state: SeatState) -> bool:
        return state.version > self.sent.get(state.section_id, -1)

    def mark_sent(self, state: SeatState) -> None:
        self.sent[state.section_id] = state.version

    def due(self, states: list[SeatState], snapshot: bool = False) -> list[SeatState]:
        """The states to send now, marked as sent: those newer than the last one sent of
        their section; for a snapshot (the first, or after a resync) also those equal to
        it, since a client that may have missed events should get every section again."""
        due = []
        for state in states:
            again = snapshot and state.version == self.sent.get(state.section_id)
            if self.fresh(state) or again:
                self.mark_sent(state)
                due.append(state)
        return due


# eq=False: listeners live in the hub's sets, so they hash by identity.
@dataclass(slots=True, eq=False)
class WaitlistWatch:
    """Listener of waitlistPosition: recomputes the student's rank from each event's
    departures, with no Redis call per subscriber per event."""

    student_id: UUID
    standing: Standing
    limit: int = 256
    _queue: asyncio.Queue[object] = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue(self.limit)

    def deliver(self, channel: str, event: SectionEvent) -> None:
        if self._queue.full():
            self.resync()
            return
        self._queue.put_nowait(event)

    def resync(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(RESYNC)

    async def next(self) -> object:
        return await self._queue.get()

    def apply(self, event: SectionEvent) -> Standing | None:
        """The new standing if this event changed it, else None. Events the standing
        already reflects (older versions) change nothing."""
        current, me = self.standing, self.student_id
        version = event.state.version
        if version <= current.version or current.status not in IN_LINE:
            return None
        if current.position is None:
            return None
        if me in event.promoted or event.enrolled == me:
            return self._move(Standing(WaitlistStatus.ENROLLED, None, version))
        if event.student_id == me and event.kind in LEFT_THE_LINE:
            return self._move(Standing(LEFT_THE_LINE[event.kind], None, version, event.reason))
        ahead_left = len(event.promoted) + (1 if 0 < event.left_rank < current.position else 0)
        status, expires = current.status, current.expires_ms
        if me in event.offered:
            status, expires = WaitlistStatus.OFFERED, event.expires_ms
        moved = Standing(status, current.position - ahead_left, version, None, expires)
        if (moved.status, moved.position) == (current.status, current.position):
            self.standing = moved
            return None
        return self._move(moved)

    def _move(self, standing: Standing) -> Standing:
        self.standing = standing
        return standing
