"""A student's schedule as they see it right after their own writes (read-your-writes):
the record (Postgres) with the changes of theirs it does not hold yet folded in.

The changes come from the shard streams, which hold exactly what the persister has not
acknowledged (it trims every entry it acknowledges). They are folded by the persister's own
rules (domain/changes.py Effects), so the answer is what Postgres will say once it catches
up. The streams must be read before the record: an entry gone from a stream was applied
before it went, so the later record read holds it, and no change falls between the two.
Reading them the other way round would lose an entry applied and trimmed in between.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from uuid import UUID

from domain.changes import Change, fold
from domain.model import Registration, WaitlistEntry

# The namespace of registration ids: a registration is one row per (student, section), so
# its id is known before Postgres writes it (the persister inserts this id).
REGISTRATION_NAMESPACE = uuid.UUID("6f0d3d2e-2f38-4e5b-9a63-1d3c1a51a7e4")


def registration_id(student_id: UUID, section_id: UUID) -> UUID:
    return uuid.uuid5(REGISTRATION_NAMESPACE, f"{student_id}/{section_id}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A student's registrations (every status, oldest first) and places in line (by when
    they joined); the 1-based ranks come from the live waitlists, not from here."""

    registrations: tuple[Registration, ...]
    waitlist: tuple[WaitlistEntry, ...]


def merge(
    student_id: UUID,
    registrations: Sequence[Registration],
    waitlist: Sequence[WaitlistEntry],
    pending: Sequence[Change],
) -> Schedule:
    """The record of one student with their `pending` changes (read from the streams before
    the record was) applied as the persister will apply them."""
    mine = [c for c in pending if c.student_id == student_id]
    effects = fold(sorted(mine, key=lambda c: c.position))
    rows = {r.section_id: r for r in registrations}
    for (_, section), row in effects.registrations.items():
        earlier = rows.get(section)
        # As infrastructure/postgres/changes.py writes it: a drop keeps the recorded date; a
        # drop of a row never recorded dates it by the drop.
        registered_at = row.registered_at or (earlier.registered_at if earlier else row.dropped_at)
        assert registered_at is not None, "an enroll dates a registration, a drop its end"
        rows[section] = Registration(
            id=earlier.id if earlier else registration_id(student_id, section),
            student_id=student_id,
            section_id=section,
            status=row.status,
            registered_at=registered_at,
            dropped_at=row.dropped_at,
        )
    places = {e.section_id: e for e in waitlist}
    for _, section in effects.waitlist_removed:
        places.pop(section, None)
    for (_, section), (sequence, at) in effects.waitlist.items():
        earlier_place = places.get(section)
        places[section] = WaitlistEntry(
            student_id,
            section,
            sequence,
            at,
            earlier_place.expires_at if earlier_place else None,
        )
    for (_, section), expires in effects.offers.items():
        if section in places:
            places[section] = replace(places[section], expires_at=expires)
    return Schedule(
        tuple(sorted(rows.values(), key=lambda r: (r.registered_at, str(r.section_id)))),
        tuple(sorted(places.values(), key=lambda e: (e.joined_at, e.sequence))),
    )
