"""The notification tables (migration 0006): the outbox, one delivery record per channel
and event, the webhook subscribers, and the students' e-mail preferences."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.orm import Mapped, mapped_column

from infrastructure.postgres.models import Base

KINDS = (
    "'PROMOTED','OFFERED','OFFER_EXPIRED','OFFER_DECLINED','SWAP_COMPLETED',"
    "'DROPPED_LINKED','REMOVED_FROM_WAITLIST'"
)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class WebhookSubscriptionRow(Base):
    __tablename__ = "webhook_subscriptions"
    subscription_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    secret: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(String(200), server_default=text("''"), nullable=False)
    created_at: Mapped[datetime] = _now()


class NotificationRow(Base):
    """One event a student must hear of; event_id is uuid5 of its stream entry
    (domain/notifications.py), so a replayed batch writes it once."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"kind IN ({KINDS})", name="kind"),
        Index("idx_notifications_student", "student_id", "occurred_at"),
    )
    event_id: Mapped[uuid.UUID] = mapped_column(PgUUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    student_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("students.student_id", ondelete="CASCADE"), nullable=False
    )
    section_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sections.section_id", ondelete="CASCADE"), nullable=False
    )
    replaced_section_id: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    stream_id: Mapped[str] = mapped_column(String(40), nullable=False)
    created_at: Mapped[datetime] = _now()


class DeliveryRow(Base):
    """One channel's delivery of one event: pending -> sent | retrying -> ... -> dead."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        CheckConstraint("state IN ('pending','retrying','sent','dead')", name="state"),
        Index(
            "idx_notification_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("state IN ('pending','retrying')"),
        ),
        Index(
            "idx_notification_deliveries_dead",
            "channel",
            postgresql_where=text("state = 'dead'"),
        ),
    )
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.event_id", ondelete="CASCADE"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(80), primary_key=True)
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_subscriptions.subscription_id", ondelete="CASCADE")
    )
    state: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"), nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), nullable=False)
    next_attempt_at: Mapped[datetime] = _now()
    claim: Mapped[uuid.UUID | None] = mapped_column(PgUUID(as_uuid=True))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class PreferenceRow(Base):
    """A student's e-mail choice for one kind; no row: e-mail on."""

    __tablename__ = "notification_preferences"
    __table_args__ = (CheckConstraint(f"kind IN ({KINDS})", name="kind"),)
    student_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("students.student_id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, nullable=False)
    updated_at: Mapped[datetime] = _now()
