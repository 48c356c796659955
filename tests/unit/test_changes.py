"""Folding a batch of stream changes into final row states."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.changes import Change, ChangeKind, after, fold, parse_position

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECTION = uuid.uuid4()
ALICE, BOB = uuid.uuid4(), uuid.uuid4()


def change(n: int, kind: ChangeKind, student: uuid.UUID | None = ALICE, **kw) -> Change:
    return Change(
        id=f"{1000 + n}-0",
        position=(1000 + n, 0),
        kind=kind,
        section_id=SECTION,
        version=n,
        at=T0 + timedelta(seconds=n),
        student_id=student,
        **kw,
    )


def test_enroll_then_drop_in_one_batch_keeps_the_registration_date():
    effects = fold([change(1, ChangeKind.ENROLL), change(2, ChangeKind.DROP)])
    row = effects.registrations[(ALICE, SECTION)]
    assert (row.status, row.registered_at, row.dropped_at) == (
        "dropped",
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=2),
    )


def test_drop_alone_leaves_the_registration_date_to_the_record():
    row = fold([change(3, ChangeKind.DROP)]).registrations[(ALICE, SECTION)]
    assert row.status == "dropped" and row.registered_at is None


def test_re_registering_after_a_drop_ends_enrolled():
    effects = fold(
        [change(1, ChangeKind.ENROLL), change(2, ChangeKind.DROP), change(3, ChangeKind.ENROLL)]
    )
    row = effects.registrations[(ALICE, SECTION)]
    assert (row.status, row.dropped_at) == ("enrolled", None)


def test_join_then_promotion_removes_the_waitlist_row_and_enrolls():
    effects = fold([change(1, ChangeKind.JOIN, sequence=7), change(2, ChangeKind.PROMOTE)])
    assert (ALICE, SECTION) not in effects.waitlist
    assert (ALICE, SECTION) in effects.waitlist_removed
    assert effects.registrations[(ALICE, SECTION)].status == "enrolled"


def test_leave_then_join_again_keeps_only_the_new_place():
    effects = fold(
        [
            change(1, ChangeKind.JOIN, sequence=1),
            change(2, ChangeKind.LEAVE),
            change(3, ChangeKind.JOIN, sequence=9),
        ]
    )
    assert effects.waitlist[(ALICE, SECTION)] == (9, T0 + timedelta(seconds=3))
    assert (ALICE, SECTION) not in effects.waitlist_removed


def test_sections_keep_the_highest_version_and_the_last_capacity():
    effects = fold(
        [
            change(4, ChangeKind.CAPACITY, student=None, total=40),
            change(2, ChangeKind.ENROLL, student=BOB),
            change(5, ChangeKind.CAPACITY, student=None, total=45),
        ]
    )
    row = effects.sections[SECTION]
    assert (row.version, row.total_seats) == (5, 45)


def test_changes_at_or_below_the_watermark_are_skipped_in_stream_order():
    batch = [
        change(3, ChangeKind.ENROLL),
        change(1, ChangeKind.JOIN, sequence=1),
        change(2, ChangeKind.LEAVE),
    ]
    assert [c.version for c in after((1001, 0), batch)] == [2, 3]
    assert [c.version for c in after(None, batch)] == [1, 2, 3]


def test_stream_ids_compare_numerically_not_as_text():
    assert parse_position("999-10") < parse_position("1000-2")
    assert parse_position("1000-2") < parse_position("1000-10")
