"""PostgresChangeLog: applies batches of stream changes, exactly once per shard.

Each shard's watermark row is locked and advanced in the batch's own transaction, so a
batch replayed after a crash is skipped as a whole. The watermark alone is safe only while
one worker applies a shard's stream in order: a worker whose lease lapsed could commit
entries it read before the new owner committed later ones, and they would be skipped as
applied. So the row also holds the owner's lease epoch, raised by the new owner before it
adopts or reads anything (take_over), and a batch of any other epoch is refused (Fenced).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from sqlalchemy import (
    Executable,
    Table,
    bindparam,
    column,
    delete,
    func,
    insert,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.changes import Change, Effects, after, fold, parse_position
from domain.leases import Fenced, Lease
from domain.notifications import notices_of
from domain.schedule import registration_id
from infrastructure.postgres.database import is_connection_error, unit_of_work
from infrastructure.postgres.models import (
    RegistrationRow,
    SectionRow,
    StreamOffsetRow,
    WaitlistRow,
)
from infrastructure.postgres.outbox import write_notices
from infrastructure.postgres.section_rules import any_of

# The attempts log (migration 0002), written here by name: an append-only table.
AttemptsTable = table(
    "registration_attempts",
    column("student_id"),
    column("section_id"),
    column("reason"),
    column("attempted_at"),
    column("request_id"),
)
REGISTRATIONS = cast(Table, RegistrationRow.__table__)
WAITLIST = cast(Table, WaitlistRow.__table__)


def _upsert_registration(keep_date: bool) -> Executable:
    statement = pg_insert(REGISTRATIONS)
    excluded = statement.excluded
    changes: dict[str, Any] = {
        "status": excluded.status,
        "dropped_date": excluded.dropped_date,
        "updated_at": func.now(),
        "version": REGISTRATIONS.c.version + 1,
    }
    if not keep_date:
        changes["registration_date"] = excluded.registration_date
    # The partition's unique key (migration 0004): the semester, then the seed's pair.
    key = [REGISTRATIONS.c.semester_id, REGISTRATIONS.c.student_id, REGISTRATIONS.c.section_id]
    return statement.on_conflict_do_update(index_elements=key, set_=changes)


def _upsert_waiting() -> Executable:
    statement = pg_insert(WAITLIST)
    return statement.on_conflict_do_update(
        index_elements=[WAITLIST.c.student_id, WAITLIST.c.section_id],
        set_={
            "position": statement.excluded.position,
            "timestamp": statement.excluded.timestamp,
            "updated_at": func.now(),
        },
    )


# Built once and run with a list of rows (executemany): SQLAlchemy compiles each statement
# once and sends the rows as multi-row VALUES pages ("insertmanyvalues"). A statement built
# with .values(rows) was compiled anew for every batch, bind by bind: that compile was half
# of a worker's CPU at the drain (py-spy; docs/benchmarks/README.md).
UPSERT_REGISTRATION = _upsert_registration(keep_date=False)
UPSERT_REGISTRATION_KEEP_DATE = _upsert_registration(keep_date=True)
UPSERT_WAITING = _upsert_waiting()
DELETE_WAITING = delete(WAITLIST).where(
    WAITLIST.c.student_id == bindparam("student"), WAITLIST.c.section_id == bindparam("section")
)


class PostgresChangeLog:
    """`email`: the notices of a batch get an e-mail delivery each (SMTP is configured);
    the outbox rows and webhook deliveries are written either way (outbox.py)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], email: bool = False) -> None:
        self.sessions = sessions
        self.email = email

    async def take_over(self, lease: Lease) -> None:
        """Raise the shard's epoch to the lease's. Each epoch takes a shard over once, so
        a retried take-over is refused too; the worker then takes a new lease."""
        async with unit_of_work(self.sessions) as session:
            _, current = await self._lock(session, lease.shard)
            if current >= lease.epoch:
                raise Fenced(lease, current)
            await session.execute(
                update(StreamOffsetRow)
                .where(StreamOffsetRow.shard == lease.shard)
                .values(epoch=lease.epoch, updated_at=func.now())
            )

    async def apply(self, lease: Lease, changes: Sequence[Change]) -> int:
        """Apply the changes past the watermark in one transaction; the count applied."""
        async with unit_of_work(self.sessions) as session:
            todo = after(await self._owned(session, lease), changes)
            if todo:
                await write_notices(session, notices_of(todo), self.email)
                await write_effects(session, fold(todo))
                await self._advance(session, lease.shard, todo[-1], len(todo))
        return len(todo)

    async def apply_prefix(
        self, lease: Lease, changes: Sequence[Change]
    ) -> tuple[int, Change | None, BaseException | None]:
        """Apply changes one by one until one fails; commit those before it.

        Returns (applied count, the failing change, its error); used to isolate a poison
        change that makes a whole batch fail.
        """
        applied = 0
        failed: tuple[Change, BaseException] | None = None
        async with unit_of_work(self.sessions) as session:
            todo = after(await self._owned(session, lease), changes)
            last: Change | None = None
            for change in todo:
                try:
                    async with session.begin_nested():
                        await write_notices(session, notices_of([change]), self.email)
                        await write_effects(session, fold([change]))
                except Exception as exc:  # the caller decides: retry or dead-letter
                    if is_connection_error(exc):
                        raise  # the database went away: no fault of this change's
                    failed = (change, exc)
                    break
                applied, last = applied + 1, change
            if last is not None:
                await self._advance(session, lease.shard, last, applied)
        if failed is None:
            return applied, None, None
        return applied, failed[0], failed[1]

    async def skip(self, lease: Lease, change: Change) -> None:
        """Move the watermark past a change that went to the dead-letter stream."""
        async with unit_of_work(self.sessions) as session:
            watermark = await self._owned(session, lease)
            if watermark is None or change.position > watermark:
                await self._advance(session, lease.shard, change, 0)

    async def watermark(self, shard: int) -> str | None:
        async with unit_of_work(self.sessions) as session:
            row = await session.get(StreamOffsetRow, shard)
            return row.last_id if row else None

    async def _owned(self, session: AsyncSession, lease: Lease) -> tuple[int, int] | None:
        """The shard's watermark, its row locked for the batch; Fenced unless the lease is
        the one that took the shard over last."""
        watermark, current = await self._lock(session, lease.shard)
        if current != lease.epoch:
            raise Fenced(lease, current)
        return watermark

    async def _lock(self, session: AsyncSession, shard: int) -> tuple[tuple[int, int] | None, int]:
        """The shard's watermark (None before the first change) and owner's epoch, its row
        locked until the transaction ends."""
        await session.execute(
            pg_insert(StreamOffsetRow)
            .values(shard=shard, last_id="0-0")
            .on_conflict_do_nothing(index_elements=[StreamOffsetRow.shard])
        )
        last_id, epoch = (
            await session.execute(
                select(StreamOffsetRow.last_id, StreamOffsetRow.epoch)
                .where(StreamOffsetRow.shard == shard)
                .with_for_update()
            )
        ).one()
        return (None if last_id == "0-0" else parse_position(last_id)), int(epoch)

    async def _advance(self, session: AsyncSession, shard: int, last: Change, count: int) -> None:
        await session.execute(
            update(StreamOffsetRow)
            .where(StreamOffsetRow.shard == shard)
            .values(
                last_id=last.id,
                applied=StreamOffsetRow.applied + count,
                updated_at=func.now(),
            )
        )


async def write_effects(session: AsyncSession, effects: Effects) -> None:
    await _write_registrations(session, effects)
    await _write_waitlist(session, effects)
    await _write_offers(session, effects)
    await _write_swaps(session, effects)
    await _write_attempts(session, effects)
    await _write_sections(session, effects)


async def _write_offers(session: AsyncSession, effects: Effects) -> None:
    if not effects.offers:
        return
    table = cast(Table, WaitlistRow.__table__)
    await session.execute(
        update(table)
        .where(table.c.student_id == bindparam("who"), table.c.section_id == bindparam("sec"))
        .values(expires_at=bindparam("until"), updated_at=func.now()),
        [{"who": k[0], "sec": k[1], "until": until} for k, until in effects.offers.items()],
    )


async def _write_swaps(session: AsyncSession, effects: Effects) -> None:
    if not effects.swaps:
        return
    table = cast(Table, WaitlistRow.__table__)
    await session.execute(
        update(table)
        .where(table.c.student_id == bindparam("who"), table.c.section_id == bindparam("sec"))
        .values(swap_from=bindparam("old"), updated_at=func.now()),
        [{"who": k[0], "sec": k[1], "old": old} for k, old in effects.swaps.items()],
    )


async def _write_attempts(session: AsyncSession, effects: Effects) -> None:
    rows = [
        {
            "student_id": a.student_id,
            "section_id": a.section_id,
            "reason": a.reason,
            "attempted_at": a.at,
            "request_id": a.request_id[:64],
        }
        for a in effects.attempts
    ]
    if rows:
        await session.execute(insert(AttemptsTable), rows)


async def _semesters(session: AsyncSession, section_ids: set[UUID]) -> dict[UUID, UUID]:
    """Each section's semester, the partition key of its registrations. Looked up in the
    batch's transaction (one indexed query) rather than carried in the stream entries: the
    scripts and the entries already in the streams stay as they are."""
    rows = await session.execute(
        select(SectionRow.section_id, SectionRow.semester_id).where(
            any_of(SectionRow.section_id, list(section_ids))
        )
    )
    found: dict[UUID, UUID] = {section: semester for section, semester in rows}
    missing = section_ids - found.keys()
    if missing:  # a poison change: it fails, and goes to the dead letters after its tries
        raise LookupError(f"sections not in Postgres: {sorted(map(str, missing))}")
    return found


async def _write_registrations(session: AsyncSession, effects: Effects) -> None:
    with_date: list[dict[str, Any]] = []
    without_date: list[dict[str, Any]] = []
    if not effects.registrations:
        return
    semesters = await _semesters(session, {section for _, section in effects.registrations})
    for (student_id, section_id), row in effects.registrations.items():
        values = {
            # Known before this insert: a read shows the row before it lands (schedule.py).
            "registration_id": registration_id(student_id, section_id),
            "semester_id": semesters[section_id],
            "student_id": student_id,
            "section_id": section_id,
            "status": row.status,
            "registration_date": row.registered_at or row.dropped_at,
            "dropped_date": row.dropped_at,
        }
        (with_date if row.registered_at else without_date).append(values)
    if with_date:
        await session.execute(UPSERT_REGISTRATION, with_date)
    if without_date:
        await session.execute(UPSERT_REGISTRATION_KEEP_DATE, without_date)


async def _write_waitlist(session: AsyncSession, effects: Effects) -> None:
    removed = [{"student": k[0], "section": k[1]} for k in effects.waitlist_removed]
    if removed:
        await session.execute(DELETE_WAITING, removed)
    joined = [
        {"student_id": k[0], "section_id": k[1], "position": seq, "timestamp": at}
        for k, (seq, at) in effects.waitlist.items()
    ]
    if joined:
        await session.execute(UPSERT_WAITING, joined)


async def _write_sections(session: AsyncSession, effects: Effects) -> None:
    if not effects.sections:
        return
    table = cast(Table, SectionRow.__table__)
    await session.execute(
        update(table)
        .where(table.c.section_id == bindparam("sid"))
        .values(
            version=func.greatest(table.c.version, bindparam("v")),
            total_seats=func.coalesce(bindparam("n"), table.c.total_seats),
            updated_at=func.now(),
        ),
        [
            {"sid": sid, "v": row.version, "n": row.total_seats}
            for sid, row in effects.sections.items()
        ],
    )
