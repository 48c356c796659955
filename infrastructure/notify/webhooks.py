"""Webhooks as Standard Webhooks specifies: a JSON body {id, type, timestamp, data}, headers
webhook-id (the event id, the same on every try), webhook-timestamp (this try, epoch
seconds) and webhook-signature `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under the
subscriber's `whsec_` secret, signed by the `standardwebhooks` reference library. A 2xx
answer within the timeout is delivered; anything else is retried."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from standardwebhooks import Webhook

from domain.notifications import Delivery, SendFailed

USER_AGENT = "coursereg-webhooks/1"


def event_type(delivery: Delivery) -> str:
    return "registration." + delivery.kind.value.lower()


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body_of(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": str(delivery.event_id),
        "type": event_type(delivery),
        "timestamp": iso(delivery.occurred_at),
        "data": {
            "kind": delivery.kind.value,
            "status": delivery.status,
            "studentId": str(delivery.student_id),
            "studentNumber": delivery.student_number,
            "sectionId": str(delivery.section_id),
            "sectionNumber": delivery.section_code,
            "courseCode": delivery.course_code,
            "courseTitle": delivery.course_title,
            "semester": delivery.semester_name,
            "expiresAt": iso(delivery.expires),
            "reason": delivery.reason,
            "replacedSectionId": str(delivery.replaced_id) if delivery.replaced_id else None,
        },
    }


@dataclass(slots=True)
class WebhookChannel:
    client: httpx.AsyncClient

    async def send(self, delivery: Delivery) -> None:
        assert delivery.webhook_url and delivery.webhook_secret, "a webhook delivery's target"
        body = json.dumps(body_of(delivery), separators=(",", ":")).encode()
        now = datetime.now(UTC)
        msg_id = str(delivery.event_id)
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(delivery.webhook_secret).sign(msg_id, now, body),
        }
        try:
            response = await self.client.post(delivery.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise SendFailed(f"webhook: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"webhook: answered {response.status_code}")
