"""The outbox write: the notices of a batch, in the batch's own transaction (changes.py),
with one delivery record per channel. Keyed by event id, so a replayed batch (or a change
applied again after isolation) writes each once."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from sqlalchemy import ARRAY, Table, bindparam, select, text, tuple_
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.notifications import EMAIL, Notices
from infrastructure.postgres.models import WaitlistRow
from infrastructure.postgres.notification_models import NotificationRow

NOTIFICATIONS = cast(Table, NotificationRow.__table__)
WAITLIST = cast(Table, WaitlistRow.__table__)
INSERT_NOTICE = pg_insert(NOTIFICATIONS).on_conflict_do_nothing(
    index_elements=[NOTIFICATIONS.c.event_id]
)
IDS = bindparam("ids", type_=ARRAY(PgUUID(as_uuid=True)))
# E-mail unless the student turned the kind off (no preference row: on).
EMAIL_DELIVERIES = text(
    "INSERT INTO notification_deliveries (event_id, channel) "
    "SELECT n.event_id, :channel FROM notifications n "
    "LEFT JOIN notification_preferences p ON p.student_id = n.student_id AND p.kind = n.kind "
    "WHERE n.event_id = ANY(:ids) AND coalesce(p.email, true) "
    "ON CONFLICT DO NOTHING"
).bindparams(IDS, channel=EMAIL)
WEBHOOK_DELIVERIES = text(
    "INSERT INTO notification_deliveries (event_id, channel, subscription_id) "
    "SELECT n.event_id, 'webhook:' || w.subscription_id, w.subscription_id "
    "FROM notifications n CROSS JOIN webhook_subscriptions w "
    "WHERE n.event_id = ANY(:ids) ON CONFLICT DO NOTHING"
).bindparams(IDS)


async def write_notices(session: AsyncSession, found: Notices, email: bool) -> int:
    """Write the batch's notices before its effects (a promotion's swap_from is read from
    the waitlist row the effects delete). Returns how many notices the batch made."""
    if not found.notices:
        return 0
    swaps: dict[tuple[UUID, UUID], UUID] = {}
    if found.promoted:
        rows = await session.execute(
            select(WAITLIST.c.student_id, WAITLIST.c.section_id, WAITLIST.c.swap_from).where(
                tuple_(WAITLIST.c.student_id, WAITLIST.c.section_id).in_(found.promoted),
                WAITLIST.c.swap_from.is_not(None),
            )
        )
        swaps = {(who, sec): old for who, sec, old in rows}
    notices = found.with_swaps(swaps)
    await session.execute(
        INSERT_NOTICE,
        [
            {
                "event_id": n.event_id,
                "kind": n.kind.value,
                "student_id": n.student_id,
                "section_id": n.section_id,
                "replaced_section_id": n.replaced,
                "expires_at": n.expires,
                "reason": n.reason,
                "occurred_at": n.at,
                "stream_id": n.stream_id,
            }
            for n in notices
        ],
    )
    ids = [n.event_id for n in notices]
    if email:
        await session.execute(EMAIL_DELIVERIES, {"ids": ids})
    await session.execute(WEBHOOK_DELIVERIES, {"ids": ids})
    return len(notices)
