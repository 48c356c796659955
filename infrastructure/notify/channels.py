"""The channels of one notifier, by a delivery's channel name ("email", "webhook:<id>")."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from domain.notifications import EMAIL, WEBHOOK_PREFIX, Channel, Delivery, SendFailed
from infrastructure.notify.email import SmtpChannel
from infrastructure.notify.webhooks import WebhookChannel
from infrastructure.settings import Settings


@dataclass(slots=True)
class Channels:
    email: Channel | None
    webhook: Channel

    async def send(self, delivery: Delivery) -> None:
        if delivery.channel == EMAIL:
            if self.email is None:
                raise SendFailed("e-mail is not configured (SMTP_HOST)")
            await self.email.send(delivery)
        elif delivery.channel.startswith(WEBHOOK_PREFIX):
            await self.webhook.send(delivery)
        else:
            raise SendFailed(f"unknown channel {delivery.channel!r}")

    def close(self) -> None:
        """Close the kept SMTP connections."""
        if isinstance(self.email, SmtpChannel):
            self.email.close()


def make_channels(settings: Settings, client: httpx.AsyncClient) -> Channels:
    email = None
    if settings.smtp_host:
        email = SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=settings.smtp_password,
            timeout=settings.notify_timeout_seconds,
        )
    return Channels(email, WebhookChannel(client))


def http_client(settings: Settings) -> httpx.AsyncClient:
    """Webhook posts: the send timeout in all, no redirects followed (a subscriber's URL is
    where it said)."""
    return httpx.AsyncClient(timeout=settings.notify_timeout_seconds, follow_redirects=False)
