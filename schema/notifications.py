"""Notifications in the schema extension (README "Notifications"): the kinds, a student's
e-mail preferences, each notification's delivery state per channel, webhook subscribers.
The types that point back at a section live in resolvers/objects.py."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Self
from uuid import UUID

import strawberry
from strawberry import Private

from domain import notifications as domain

NotificationKind = strawberry.enum(
    domain.NotificationKind,
    name="NotificationKind",
    description="What a student is told of: by e-mail (unless turned off) and to webhooks.",
)


@strawberry.enum(description="Where one channel's delivery of a notification stands.")
class DeliveryState(Enum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    DEAD = "dead"


@strawberry.type
class NotificationPreference:
    kind: NotificationKind  # type: ignore[valid-type]
    email: bool


@strawberry.input
class NotificationPreferenceInput:
    kind: NotificationKind  # type: ignore[valid-type]
    email: bool


@strawberry.type(description="One channel's delivery: email, or webhook:<subscription id>.")
class NotificationDelivery:
    channel: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    sent_at: datetime | None

    @classmethod
    def of(cls, d: domain.DeliveryRecord) -> NotificationDelivery:
        return cls(
            channel=d.channel,
            state=DeliveryState(d.state.value),
            attempts=d.attempts,
            last_error=d.last_error,
            sent_at=d.sent_at,
        )


@strawberry.type
class WebhookSubscription:
    id: UUID
    url: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, w: domain.WebhookSubscription) -> WebhookSubscription:
        return cls(id=w.id, url=w.url, description=w.description, created_at=w.created_at)


@strawberry.type
class WebhookSubscriptionCreated:
    subscription: WebhookSubscription
    secret: str = strawberry.field(
        description="The signing secret (whsec_...): shown this once, never listed again."
    )


@strawberry.type(description="An event a student was told of, and each channel's delivery.")
class Notification:
    id: UUID = strawberry.field(description="The event id: webhook-id and the e-mail's Message-ID.")
    kind: NotificationKind  # type: ignore[valid-type]
    occurred_at: datetime
    expires_at: datetime | None = strawberry.field(description="An offer's claim deadline.")
    reason: str | None
    deliveries: list[NotificationDelivery]
    section_id: Private[UUID]

    @classmethod
    def of(cls, n: domain.NotificationRecord) -> Self:
        return cls(
            id=n.event_id,
            kind=n.kind,
            occurred_at=n.occurred_at,
            expires_at=n.expires,
            reason=n.reason,
            deliveries=[NotificationDelivery.of(d) for d in n.deliveries],
            section_id=n.section_id,
        )
