"""Waitlist ranks recomputed from events, and seat feeds that coalesce."""

from __future__ import annotations

import uuid

from domain.live import RESYNC, SeatFeed, SectionEvent, Standing, WaitlistStatus, WaitlistWatch
from domain.model import SeatState

SECTION = uuid.uuid4()
ME, OTHER = uuid.uuid4(), uuid.uuid4()


def event(version: int, kind: str, student=OTHER, left_rank=0, promoted=()) -> SectionEvent:
    return SectionEvent(SeatState(SECTION, 10, 0, 5, version), kind, student, left_rank, promoted)


def watch(position: int, version: int = 1) -> WaitlistWatch:
    return WaitlistWatch(ME, Standing(WaitlistStatus.WAITING, position, version))


def test_someone_ahead_leaving_moves_me_up_one():
    w = watch(5)
    assert w.apply(event(2, "leave", left_rank=3)) == Standing(WaitlistStatus.WAITING, 4, 2)


def test_someone_behind_leaving_changes_nothing():
    assert watch(5).apply(event(2, "leave", left_rank=7)) is None


def test_promotions_from_the_head_move_me_up_by_their_number():
    w = watch(5)
    new = w.apply(event(2, "capacity", student=None, promoted=(uuid.uuid4(), uuid.uuid4())))
    assert new == Standing(WaitlistStatus.WAITING, 3, 2)


def test_my_promotion_is_final():
    w = watch(1)
    assert w.apply(event(2, "drop", promoted=(ME,))) == Standing(WaitlistStatus.ENROLLED, None, 2)
    assert w.standing.final


def test_leaving_myself_is_removed():
    w = watch(2)
    standing = w.apply(event(2, "leave", student=ME, left_rank=2))
    assert standing is not None and standing.status is WaitlistStatus.REMOVED


def test_events_older_than_the_standing_are_ignored():
    w = watch(5, version=10)
    assert w.apply(event(9, "leave", left_rank=1)) is None
    assert w.standing.position == 5


async def test_a_full_queue_is_replaced_by_a_resync_and_stays_bounded():
    w = WaitlistWatch(ME, Standing(WaitlistStatus.WAITING, 3, 1), limit=4)
    for v in range(2, 100):
        w.deliver("c", event(v, "join"))
        assert w._queue.qsize() <= 4
    w = WaitlistWatch(ME, Standing(WaitlistStatus.WAITING, 3, 1), limit=4)
    for v in range(2, 7):
        w.deliver("c", event(v, "join"))
    assert await w.next() is RESYNC


async def test_seat_feed_sends_every_change_to_a_subscriber_that_keeps_up():
    feed = SeatFeed(limit=8)
    for version in range(1, 9):
        feed.deliver("c", event(version, "enroll"))
    resync, states = await feed.next()
    assert not resync
    assert [s.version for s in feed.due(states)] == list(range(1, 9))


async def test_seat_feed_collapses_to_the_latest_state_per_section_when_behind():
    feed = SeatFeed(limit=8)
    for version in range(1, 100):
        feed.deliver("c", event(version, "enroll"))
        assert len(feed._queue) <= 8
    resync, states = await feed.next()
    assert not resync
    assert [s.version for s in states][-1] == 99
    assert len(states) <= 8


async def test_seat_feed_never_sends_an_older_version():
    feed = SeatFeed()
    feed.mark_sent(SeatState(SECTION, 10, 0, 0, 50))
    feed.deliver("c", event(40, "enroll"))
    _, states = await feed.next()
    assert states == []
