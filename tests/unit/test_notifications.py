"""Which stream changes make a notification, with which deterministic event id; retries."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

from domain.changes import Change, ChangeKind
from domain.notifications import NotificationKind, event_id, notices_of, retry_delay

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
STUDENT, SECTION, OLD = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def change(kind: ChangeKind, n: int, **more: object) -> Change:
    fields: dict = {"student_id": STUDENT, **more}
    return Change(f"1-{n}", (1, n), kind, SECTION, n, NOW, **fields)


def test_each_kind_a_student_must_hear_of() -> None:
    changes = [
        change(ChangeKind.ENROLL, 1),  # their own register: answered, not notified
        change(ChangeKind.DROP, 2),  # their own drop
        change(ChangeKind.DROP, 3, reason="LINK_REQUIRED"),
        change(ChangeKind.OFFER, 4, expires=NOW),
        change(ChangeKind.LEAVE, 5, reason="OFFER_EXPIRED"),
        change(ChangeKind.LEAVE, 6, reason="OFFER_DECLINED"),
        change(ChangeKind.LEAVE, 7, reason="HOLD"),
        change(ChangeKind.LEAVE, 8),  # left the line themself
        change(ChangeKind.PROMOTE, 9),
        change(ChangeKind.ATTEMPT, 10, reason="HOLD"),
        change(ChangeKind.CAPACITY, 11, student_id=None, total=3),
    ]
    found = notices_of(changes)
    assert [(n.kind, n.stream_id) for n in found.notices] == [
        (NotificationKind.DROPPED_LINKED, "1-3"),
        (NotificationKind.OFFERED, "1-4"),
        (NotificationKind.OFFER_EXPIRED, "1-5"),
        (NotificationKind.OFFER_DECLINED, "1-6"),
        (NotificationKind.REMOVED_FROM_WAITLIST, "1-7"),
        (NotificationKind.PROMOTED, "1-9"),
    ]
    assert found.notices[1].expires == NOW and found.notices[4].reason == "HOLD"
    assert found.promoted == [(STUDENT, SECTION)], "its swap is looked up in Postgres"


def test_event_ids_are_the_same_on_every_replay_and_differ_between_entries() -> None:
    first = notices_of([change(ChangeKind.PROMOTE, 1)]).notices
    again = notices_of([change(ChangeKind.PROMOTE, 1)]).notices
    other = notices_of([change(ChangeKind.PROMOTE, 2)]).notices
    assert first[0].event_id == again[0].event_id != other[0].event_id
    assert first[0].event_id == event_id(change(ChangeKind.PROMOTE, 1), NotificationKind.PROMOTED)


def test_a_promotion_into_a_place_that_replaces_a_section_completes_a_swap() -> None:
    joined = change(ChangeKind.JOIN, 1, sequence=1, replaces=OLD)
    found = notices_of([joined, change(ChangeKind.PROMOTE, 2)])
    (notice,) = found.notices
    assert (notice.kind, notice.replaced) == (NotificationKind.SWAP_COMPLETED, OLD)
    assert found.promoted == [], "the batch told the swap itself"
    # Told by the waitlist row instead (the join in an earlier batch): the same event id.
    later = notices_of([change(ChangeKind.PROMOTE, 2)])
    (swap,) = later.with_swaps({(STUDENT, SECTION): OLD})
    assert (swap.kind, swap.event_id) == (NotificationKind.SWAP_COMPLETED, notice.event_id)


def test_retries_back_off_exponentially_with_jitter_up_to_the_cap() -> None:
    rng = random.Random(7)
    delays = [retry_delay(n, 30, 3600, rng) for n in range(1, 12)]
    for n, delay in enumerate(delays, start=1):
        base = min(3600, 30 * 2 ** (n - 1))
        assert base / 2 <= delay <= base
    assert delays[-1] > 1800, "hours apart at the end"
