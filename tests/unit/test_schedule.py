"""A student's schedule: the record with their pending stream changes folded in as the
persister will fold them (domain/schedule.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.changes import Change, ChangeKind
from domain.model import Registration, WaitlistEntry
from domain.schedule import merge, registration_id

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ME, OTHER = uuid.uuid4(), uuid.uuid4()
A, B = uuid.uuid4(), uuid.uuid4()


def change(n: int, kind: ChangeKind, section: uuid.UUID, student: uuid.UUID = ME, **kw) -> Change:
    return Change(
        id=f"{1000 + n}-0",
        position=(1000 + n, 0),
        kind=kind,
        section_id=section,
        version=n,
        at=T0 + timedelta(seconds=n),
        student_id=student,
        **kw,
    )


def recorded(section: uuid.UUID, status: str = "enrolled") -> Registration:
    return Registration(uuid.uuid4(), ME, section, status, T0, None)


def test_an_enrollment_not_recorded_yet_has_the_id_and_date_postgres_will_give_it() -> None:
    found = merge(ME, [], [], [change(1, ChangeKind.ENROLL, A)])
    assert found.registrations == (
        Registration(registration_id(ME, A), ME, A, "enrolled", T0 + timedelta(seconds=1), None),
    )


def test_a_drop_keeps_the_recorded_id_and_date() -> None:
    row = recorded(A)
    (found,) = merge(ME, [row], [], [change(2, ChangeKind.DROP, A)]).registrations
    assert (found.id, found.status, found.registered_at) == (row.id, "dropped", T0)
    assert found.dropped_at == T0 + timedelta(seconds=2)


def test_changes_already_recorded_fold_to_the_same_rows() -> None:
    """The streams keep an entry until it is acknowledged, after it was written: folding it
    again over the record changes nothing."""
    enroll = change(1, ChangeKind.ENROLL, A)
    row = Registration(registration_id(ME, A), ME, A, "enrolled", enroll.at, None)
    assert merge(ME, [row], [], [enroll]).registrations == (row,)


def test_other_students_changes_are_ignored_and_a_place_left_is_gone() -> None:
    place = WaitlistEntry(ME, B, 7, T0, None)
    found = merge(
        ME,
        [],
        [place],
        [change(1, ChangeKind.ENROLL, A, OTHER), change(2, ChangeKind.LEAVE, B)],
    )
    assert found.registrations == () and found.waitlist == ()


def test_a_join_then_an_offer_show_the_place_with_its_deadline() -> None:
    expires = T0 + timedelta(hours=1)
    found = merge(
        ME,
        [],
        [],
        [
            change(1, ChangeKind.JOIN, B, sequence=3),
            change(2, ChangeKind.OFFER, B, expires=expires),
        ],
    )
    assert found.waitlist == (WaitlistEntry(ME, B, 3, T0 + timedelta(seconds=1), expires),)


def test_a_promotion_enrolls_and_leaves_the_line() -> None:
    found = merge(ME, [], [WaitlistEntry(ME, B, 3, T0, None)], [change(4, ChangeKind.PROMOTE, B)])
    assert [(r.section_id, r.status) for r in found.registrations] == [(B, "enrolled")]
    assert found.waitlist == ()
