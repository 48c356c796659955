"""Notification fields of the schema extension: the students' e-mail preferences and the
staff's webhook subscribers (README "Notifications")."""

from __future__ import annotations

from uuid import UUID

from resolvers.catalog import student as find_student
from resolvers.context import Info
from resolvers.objects import Student
from schema.notifications import (
    NotificationPreferenceInput,
    WebhookSubscription,
    WebhookSubscriptionCreated,
)


async def set_notification_preferences(
    info: Info, student_id: UUID, preferences: list[NotificationPreferenceInput]
) -> Student:
    actor = info.context.actor
    await info.context.services.notifications.set_email_preferences(
        actor, student_id, [(p.kind, p.email) for p in preferences]
    )
    found = await find_student(info, student_id)
    assert found is not None, "the preferences were written for an existing student"
    return found


async def add_webhook_subscription(
    info: Info, url: str, secret: str | None, description: str | None
) -> WebhookSubscriptionCreated:
    subscription, key = await info.context.services.notifications.add_webhook(
        info.context.actor, url, secret, description
    )
    return WebhookSubscriptionCreated(subscription=WebhookSubscription.of(subscription), secret=key)


async def remove_webhook_subscription(info: Info, id: UUID) -> bool:
    await info.context.services.notifications.remove_webhook(info.context.actor, id)
    return True


async def webhook_subscriptions(info: Info) -> list[WebhookSubscription]:
    found = await info.context.services.notifications.webhooks(info.context.actor)
    return [WebhookSubscription.of(w) for w in found]
