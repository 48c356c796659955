"""The notifier's outbox (claims, sends and failures recorded) and the notification records
staff and students read and change: preferences, the per-student view, webhook subscribers.

Claims: each worker takes due deliveries with FOR UPDATE SKIP LOCKED and stamps them with a
claim token and a lease (`lease_until`); a send is recorded only under the same token, so a
worker that stalled past its lease and lost the row to another records nothing. The lease
outlasts a send's timeout, so in normal operation no row is ever sent twice; a worker that
dies mid-send leaves the row to be claimed again when the lease lapses (one repeat, with the
same event id).
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.notifications import (
    Delivery,
    DeliveryRecord,
    DeliveryState,
    NotificationKind,
    NotificationRecord,
    WebhookSubscription,
)
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.models import StudentRow
from infrastructure.postgres.notification_models import (
    DeliveryRow,
    NotificationRow,
    PreferenceRow,
    WebhookSubscriptionRow,
)

CLAIM = text(
    """
WITH picked AS (
  SELECT event_id, channel FROM notification_deliveries
  WHERE state IN ('pending', 'retrying') AND next_attempt_at <= now()
    AND (lease_until IS NULL OR lease_until < now())
  ORDER BY next_attempt_at
  LIMIT :limit
  FOR UPDATE SKIP LOCKED
), claimed AS (
  UPDATE notification_deliveries d
  SET claim = :claim, lease_until = now() + make_interval(secs => :lease),
      attempts = d.attempts + 1, updated_at = now()
  FROM picked WHERE d.event_id = picked.event_id AND d.channel = picked.channel
  RETURNING d.event_id, d.channel, d.attempts, d.subscription_id
)
SELECT c.event_id, c.channel, c.attempts, n.kind, n.occurred_at, n.student_id,
       st.student_number, st.first_name || ' ' || st.last_name AS student_name, st.email,
       n.section_id, sec.section_number, co.course_code, co.course_name, sem.semester_name,
       n.expires_at, n.reason, n.replaced_section_id, old.section_number AS replaced_code,
       oldco.course_code AS replaced_course,
       w.url, w.secret
FROM claimed c
JOIN notifications n ON n.event_id = c.event_id
JOIN students st ON st.student_id = n.student_id
JOIN sections sec ON sec.section_id = n.section_id
JOIN courses co ON co.course_id = sec.course_id
JOIN semesters sem ON sem.semester_id = sec.semester_id
LEFT JOIN sections old ON old.section_id = n.replaced_section_id
LEFT JOIN courses oldco ON oldco.course_id = old.course_id
LEFT JOIN webhook_subscriptions w ON w.subscription_id = c.subscription_id
"""
)
SENT = text(
    "UPDATE notification_deliveries SET state = 'sent', sent_at = now(), claim = NULL, "
    "lease_until = NULL, last_error = NULL, updated_at = now() "
    "WHERE event_id = :event AND channel = :channel AND claim = :claim AND state <> 'sent'"
)
FAILED = text(
    "UPDATE notification_deliveries SET state = :state, last_error = :error, claim = NULL, "
    "lease_until = NULL, next_attempt_at = now() + make_interval(secs => :delay), "
    "updated_at = now() "
    "WHERE event_id = :event AND channel = :channel AND claim = :claim AND state <> 'sent'"
)
COUNTS = text(
    "SELECT state, count(*) FROM notification_deliveries "
    "WHERE state IN ('pending', 'retrying', 'dead') GROUP BY state"
)
DEAD_BY_CHANNEL = text(
    "SELECT split_part(channel, ':', 1), count(*) FROM notification_deliveries "
    "WHERE state = 'dead' GROUP BY 1"
)
RETRY_DEAD = text(
    "UPDATE notification_deliveries SET state = 'retrying', attempts = 0, claim = NULL, "
    "lease_until = NULL, next_attempt_at = now(), updated_at = now() WHERE state = 'dead'"
)
OLDEST_DUE = text(
    "SELECT extract(epoch FROM now() - min(n.occurred_at)) FROM notification_deliveries d "
    "JOIN notifications n ON n.event_id = d.event_id WHERE d.state IN ('pending', 'retrying')"
)


def _delivery(row: Any, claim: UUID) -> Delivery:
    return Delivery(
        event_id=row.event_id,
        channel=row.channel,
        claim=claim,
        attempts=row.attempts,
        kind=NotificationKind(row.kind),
        occurred_at=row.occurred_at,
        student_id=row.student_id,
        student_number=row.student_number,
        student_name=row.student_name,
        email=row.email,
        section_id=row.section_id,
        section_code=row.section_number,
        course_code=row.course_code,
        course_title=row.course_name,
        semester_name=row.semester_name,
        expires=row.expires_at,
        reason=row.reason,
        replaced_id=row.replaced_section_id,
        replaced_code=(f"{row.replaced_course} {row.replaced_code}" if row.replaced_code else None),
        webhook_url=row.url,
        webhook_secret=row.secret,
    )


class PostgresOutbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def claim(self, limit: int, lease_seconds: float) -> list[Delivery]:
        token = uuid.uuid4()
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(
                CLAIM, {"limit": limit, "claim": token, "lease": lease_seconds}
            )
            return [_delivery(row, token) for row in rows]

    async def sent(self, delivery: Delivery) -> bool:
        async with unit_of_work(self.sessions) as session:
            result = await session.execute(SENT, self._key(delivery))
        return bool(getattr(result, "rowcount", 0))

    async def failed(self, delivery: Delivery, error: str, retry_in: float | None) -> bool:
        state = DeliveryState.DEAD if retry_in is None else DeliveryState.RETRYING
        values = {**self._key(delivery), "state": state.value, "error": error[:2000]}
        values["delay"] = retry_in or 0.0
        async with unit_of_work(self.sessions) as session:
            result = await session.execute(FAILED, values)
        return bool(getattr(result, "rowcount", 0))

    @staticmethod
    def _key(delivery: Delivery) -> dict[str, Any]:
        return {"event": delivery.event_id, "channel": delivery.channel, "claim": delivery.claim}

    async def retry_dead(self) -> int:
        """Dead deliveries back to retrying, due now, their attempts from zero."""
        async with unit_of_work(self.sessions) as session:
            result = await session.execute(RETRY_DEAD)
        return int(getattr(result, "rowcount", 0))

    async def counts(self) -> dict[str, Any]:
        """Deliveries waiting, retrying and dead (dead per channel), and the age of the
        oldest event not yet delivered (seconds): /health and /metrics."""
        async with unit_of_work(self.sessions) as session:
            states = {state: int(n) for state, n in await session.execute(COUNTS)}
            dead = {channel: int(n) for channel, n in await session.execute(DEAD_BY_CHANNEL)}
            oldest = await session.scalar(OLDEST_DUE)
        return {
            "pending": states.get("pending", 0),
            "retrying": states.get("retrying", 0),
            "dead": states.get("dead", 0),
            "dead_by_channel": dead,
            "oldest_undelivered_seconds": round(float(oldest), 3) if oldest else 0.0,
        }


class PostgresNotificationRecords:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def email_preferences(self, student_id: UUID) -> dict[NotificationKind, bool]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(
                select(PreferenceRow.kind, PreferenceRow.email).where(
                    PreferenceRow.student_id == student_id
                )
            )
            return {NotificationKind(kind): bool(on) for kind, on in rows}

    async def set_email_preferences(
        self, student_id: UUID, choices: dict[NotificationKind, bool]
    ) -> bool:
        async with unit_of_work(self.sessions) as session:
            if await session.get(StudentRow, student_id) is None:
                return False
            if choices:
                statement = pg_insert(PreferenceRow)
                await session.execute(
                    statement.on_conflict_do_update(
                        index_elements=[PreferenceRow.student_id, PreferenceRow.kind],
                        set_={"email": statement.excluded.email, "updated_at": text("now()")},
                    ),
                    [
                        {"student_id": student_id, "kind": kind.value, "email": on}
                        for kind, on in choices.items()
                    ],
                )
        return True

    async def notifications(self, student_id: UUID, first: int) -> list[NotificationRecord]:
        async with unit_of_work(self.sessions) as session:
            found = (
                await session.execute(
                    select(NotificationRow)
                    .where(NotificationRow.student_id == student_id)
                    .order_by(NotificationRow.occurred_at.desc(), NotificationRow.event_id)
                    .limit(first)
                )
            ).scalars()
            notes = list(found)
            deliveries: dict[UUID, list[DeliveryRecord]] = {n.event_id: [] for n in notes}
            if notes:
                rows = await session.execute(
                    select(DeliveryRow)
                    .where(DeliveryRow.event_id.in_(list(deliveries)))
                    .order_by(DeliveryRow.channel)
                )
                for d in rows.scalars():
                    deliveries[d.event_id].append(
                        DeliveryRecord(
                            d.channel, DeliveryState(d.state), d.attempts, d.last_error, d.sent_at
                        )
                    )
        return [
            NotificationRecord(
                n.event_id,
                NotificationKind(n.kind),
                n.section_id,
                n.occurred_at,
                n.expires_at,
                n.reason,
                tuple(deliveries[n.event_id]),
            )
            for n in notes
        ]

    async def add_webhook(self, url: str, secret: str, description: str) -> WebhookSubscription:
        row = WebhookSubscriptionRow(
            subscription_id=uuid.uuid4(), url=url, secret=secret, description=description
        )
        async with unit_of_work(self.sessions) as session:
            session.add(row)
            await session.flush()
            await session.refresh(row)
            return _subscription(row)

    async def remove_webhook(self, subscription_id: UUID) -> bool:
        async with unit_of_work(self.sessions) as session:
            result = await session.execute(
                delete(WebhookSubscriptionRow).where(
                    WebhookSubscriptionRow.subscription_id == subscription_id
                )
            )
        return bool(getattr(result, "rowcount", 0))

    async def webhooks(self) -> list[WebhookSubscription]:
        async with unit_of_work(self.sessions) as session:
            rows = await session.execute(
                select(WebhookSubscriptionRow).order_by(WebhookSubscriptionRow.created_at)
            )
            return [_subscription(r) for r in rows.scalars()]


def _subscription(row: WebhookSubscriptionRow) -> WebhookSubscription:
    return WebhookSubscription(row.subscription_id, row.url, row.description, row.created_at)
