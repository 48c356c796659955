"""Notifications: which persisted changes a student must hear of, the event ids that make a
replayed batch write each once, the delivery states and the retry schedule, and the ports
the notifier (workers/notifier.py) and the staff's and students' fields use.

Guarantee (README "Notifications"): an event reaches each channel at least once, with the
same event id every time; in normal operation exactly once. A worker that dies after a
send and before recording it (or stalls past its claim) lets another worker send it again:
at most one repeat per such crash, carrying the same event id for receivers to dedupe.
"""

from __future__ import annotations

import base64
import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID, uuid5

from domain.catalog import require_staff, require_text
from domain.changes import Change, ChangeKind
from domain.errors import BadInput, NotFound
from domain.model import Actor
from domain.registration import authorize
from domain.rules import LINE_RULES, Rejection

# uuid5 namespace of event ids (a fixed random uuid): the same stream entry and kind give
# the same id in every process and on every replay.
EVENT_NAMESPACE = UUID("7d0c5f4e-4f3b-4c55-9a55-2f1e1d7f6a01")
EMAIL = "email"
WEBHOOK_PREFIX = "webhook:"
OFFER_EXPIRED = "OFFER_EXPIRED"
OFFER_DECLINED = "OFFER_DECLINED"


class NotificationKind(StrEnum):
    PROMOTED = "PROMOTED"  # off the waitlist, enrolled
    OFFERED = "OFFERED"  # a seat held for them until `expires` (OFFER mode)
    OFFER_EXPIRED = "OFFER_EXPIRED"  # the offer lapsed: off the line, the seat passed on
    OFFER_DECLINED = "OFFER_DECLINED"  # they declined: off the line, the seat passed on
    SWAP_COMPLETED = "SWAP_COMPLETED"  # promoted into a section that replaces another
    DROPPED_LINKED = "DROPPED_LINKED"  # dropped because its linked partner was dropped
    REMOVED_FROM_WAITLIST = "REMOVED_FROM_WAITLIST"  # a rule now refuses them (reason)


# What the student is now, in the words of the e-mails and the webhook's `data.status`.
STATUS_OF = {
    NotificationKind.PROMOTED: "ENROLLED",
    NotificationKind.OFFERED: "OFFERED",
    NotificationKind.OFFER_EXPIRED: "EXPIRED",
    NotificationKind.OFFER_DECLINED: "DECLINED",
    NotificationKind.SWAP_COMPLETED: "ENROLLED",
    NotificationKind.DROPPED_LINKED: "DROPPED",
    NotificationKind.REMOVED_FROM_WAITLIST: "REMOVED",
}


class DeliveryState(StrEnum):
    PENDING = "pending"
    RETRYING = "retrying"
    SENT = "sent"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class Notice:
    """An outbox row: one event for one student, from one stream entry."""

    event_id: UUID
    kind: NotificationKind
    student_id: UUID
    section_id: UUID
    at: datetime
    stream_id: str
    expires: datetime | None = None
    reason: str | None = None
    replaced: UUID | None = None


def event_id(change: Change, kind: NotificationKind) -> UUID:
    """Deterministic: uuid5 of the stream entry (its id within the section's shard stream),
    the kind, the student and the section."""
    name = f"{change.id}|{kind}|{change.student_id}|{change.section_id}"
    return uuid5(EVENT_NAMESPACE, name)


def kind_of(change: Change) -> NotificationKind | None:
    """The notification a change makes, if any (a promotion's swap is told apart later)."""
    if change.student_id is None:
        return None
    if change.kind is ChangeKind.PROMOTE:
        return NotificationKind.PROMOTED
    if change.kind is ChangeKind.OFFER:
        return NotificationKind.OFFERED
    if change.kind is ChangeKind.LEAVE:
        if change.reason == OFFER_EXPIRED:
            return NotificationKind.OFFER_EXPIRED
        if change.reason == OFFER_DECLINED:
            return NotificationKind.OFFER_DECLINED
        if change.reason in LINE_RULES:
            return NotificationKind.REMOVED_FROM_WAITLIST
        return None  # left the line themself
    if change.kind is ChangeKind.DROP and change.reason == Rejection.LINK_REQUIRED:
        return NotificationKind.DROPPED_LINKED
    return None  # their own register or drop: they were answered


@dataclass(slots=True)
class Notices:
    """The notices of a batch. `promoted` lists the promotions whose swap is not known from
    the batch itself: the writer looks up the waitlist row's swap_from before deleting it."""

    notices: list[Notice] = field(default_factory=list)
    promoted: list[tuple[UUID, UUID]] = field(default_factory=list)

    def with_swaps(self, swaps: dict[tuple[UUID, UUID], UUID]) -> list[Notice]:
        """The notices, each promotion that completes a swap (its waitlist place replaced
        an enrolled section) as SWAP_COMPLETED."""
        out = []
        for n in self.notices:
            old = swaps.get((n.student_id, n.section_id))
            if n.kind is NotificationKind.PROMOTED and old is not None and n.replaced is None:
                n = Notice(
                    n.event_id, NotificationKind.SWAP_COMPLETED, n.student_id, n.section_id,
                    n.at, n.stream_id, replaced=old,
                )  # fmt: skip
            out.append(n)
        return out


def _track_swap(
    change: Change,
    key: tuple[UUID, UUID],
    swaps: dict[tuple[UUID, UUID], UUID],
    joined: set[tuple[UUID, UUID]],
) -> None:
    """The swap a waitlist place stands for, as the batch itself tells it."""
    if change.kind in (ChangeKind.JOIN, ChangeKind.SWAP_WAIT):
        joined.add(key)
        if change.replaces:
            swaps[key] = change.replaces
        elif change.kind is ChangeKind.JOIN:
            swaps.pop(key, None)
    elif change.kind is ChangeKind.LEAVE:
        swaps.pop(key, None)


def notices_of(changes: Iterable[Change]) -> Notices:
    """The notices of a batch of changes, in stream order. The event id is that of the
    change's first kind (PROMOTED), so a swap told apart later keeps its id."""
    found = Notices()
    swaps: dict[tuple[UUID, UUID], UUID] = {}
    joined: set[tuple[UUID, UUID]] = set()  # a place taken in this batch: its swap is known
    for change in changes:
        if change.student_id is None:
            continue
        key = (change.student_id, change.section_id)
        _track_swap(change, key, swaps, joined)
        kind = kind_of(change)
        if kind is None:
            continue
        notice = Notice(
            event_id(change, kind),
            kind,
            change.student_id,
            change.section_id,
            change.at,
            change.id,
            expires=change.expires,
            reason=change.reason if kind is not NotificationKind.OFFERED else None,
        )
        if kind is NotificationKind.PROMOTED:
            old = swaps.pop(key, None)
            if old is not None:
                notice = Notice(
                    notice.event_id, NotificationKind.SWAP_COMPLETED, *key, change.at, change.id,
                    replaced=old,
                )  # fmt: skip
            elif key not in joined:
                found.promoted.append(key)
        found.notices.append(notice)
    return found


def retry_delay(attempts: int, first: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before the next try after `attempts` failed ones: exponential from `first`,
    capped, with full jitter over its upper half (so retries of a burst spread out)."""
    base = min(cap, first * 2 ** max(attempts - 1, 0))
    return base * (rng or random).uniform(0.5, 1.0)


# -- what the notifier sends ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed delivery: one channel's send of one event, with what its message names."""

    event_id: UUID
    channel: str
    claim: UUID
    attempts: int  # including this one
    kind: NotificationKind
    occurred_at: datetime
    student_id: UUID
    student_number: str
    student_name: str
    email: str
    section_id: UUID
    section_code: str
    course_code: str
    course_title: str
    semester_name: str
    expires: datetime | None = None
    reason: str | None = None
    replaced_id: UUID | None = None
    replaced_code: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None

    @property
    def status(self) -> str:
        return STATUS_OF[self.kind]


class SendFailed(Exception):
    """A channel could not deliver (refused, timed out, unreachable); tried again later."""


class Channel(Protocol):
    async def send(self, delivery: Delivery) -> None:
        """Deliver or raise (SendFailed or anything else: both are retried)."""


class Outbox(Protocol):
    async def claim(self, limit: int, lease_seconds: float) -> list[Delivery]:
        """Claim up to `limit` due deliveries for `lease_seconds` (each try counted)."""

    async def sent(self, delivery: Delivery) -> bool:
        """Record a send; False if the claim was lost (another worker holds it now)."""

    async def failed(self, delivery: Delivery, error: str, retry_in: float | None) -> bool:
        """Record a failed try: again in `retry_in` seconds, or dead (None)."""


# -- preferences and the staff's view ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    event_id: UUID
    kind: NotificationKind
    section_id: UUID
    occurred_at: datetime
    expires: datetime | None
    reason: str | None
    deliveries: tuple[DeliveryRecord, ...]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    channel: str
    state: DeliveryState
    attempts: int
    last_error: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebhookSubscription:
    id: UUID
    url: str
    description: str
    created_at: datetime


class NotificationRecords(Protocol):
    async def email_preferences(self, student_id: UUID) -> dict[NotificationKind, bool]:
        """The kinds the student chose; a kind not named is on."""

    async def set_email_preferences(
        self, student_id: UUID, choices: dict[NotificationKind, bool]
    ) -> bool:
        """False if there is no such student."""

    async def notifications(self, student_id: UUID, first: int) -> list[NotificationRecord]:
        """Newest first."""

    async def add_webhook(self, url: str, secret: str, description: str) -> WebhookSubscription: ...

    async def remove_webhook(self, subscription_id: UUID) -> bool: ...

    async def webhooks(self) -> list[WebhookSubscription]: ...


MAX_NOTIFICATIONS_PAGE = 200
MAX_WEBHOOKS = 50
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def require_secret(secret: str) -> str:
    """`whsec_` and the base64 of 24 to 64 bytes (the spec's format)."""
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raw = b""
    if not secret.startswith(SECRET_PREFIX) or not 24 <= len(raw) <= 64:
        raise BadInput("secret must be whsec_ and the base64 of 24 to 64 bytes", field="secret")
    return secret


def require_webhook_url(url: str) -> str:
    """http(s) with a host; at most 2000 characters, no whitespace or control characters."""
    text = url.strip()
    scheme, sep, rest = text.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0]
    bad = any(c.isspace() or ord(c) < 32 for c in text)
    if not sep or scheme.lower() not in ("http", "https") or not host or bad or len(text) > 2000:
        raise BadInput("url must be an http(s) URL with a host", field="url")
    return text


@dataclass(frozen=True, slots=True)
class NotificationService:
    """Preferences and the per-student view (the student themself or staff); webhook
    subscribers (staff)."""

    records: NotificationRecords

    async def email_preferences(
        self, actor: Actor, student_id: UUID
    ) -> list[tuple[NotificationKind, bool]]:
        authorize(actor, student_id)
        chosen = await self.records.email_preferences(student_id)
        return [(kind, chosen.get(kind, True)) for kind in NotificationKind]

    async def set_email_preferences(
        self, actor: Actor, student_id: UUID, choices: Sequence[tuple[NotificationKind, bool]]
    ) -> None:
        authorize(actor, student_id)
        kinds = [kind for kind, _ in choices]
        if len(set(kinds)) != len(kinds):
            raise BadInput("each kind may be named once", field="preferences")
        if not await self.records.set_email_preferences(student_id, dict(choices)):
            raise NotFound(f"student {student_id} not found")

    async def notifications(
        self, actor: Actor, student_id: UUID, first: int
    ) -> list[NotificationRecord]:
        authorize(actor, student_id)
        if not 1 <= first <= MAX_NOTIFICATIONS_PAGE:
            raise BadInput(f"first must be 1..{MAX_NOTIFICATIONS_PAGE}", field="first")
        return await self.records.notifications(student_id, first)

    async def add_webhook(
        self, actor: Actor, url: str, secret: str | None, description: str | None
    ) -> tuple[WebhookSubscription, str]:
        """The subscription and its secret (made here unless given): shown this once."""
        require_staff(actor)
        target = require_webhook_url(url)
        key = new_secret() if secret is None else require_secret(secret)
        about = require_text("description", description, 200) if description else ""
        if len(await self.records.webhooks()) >= MAX_WEBHOOKS:
            raise BadInput(f"at most {MAX_WEBHOOKS} webhook subscriptions", field="url")
        return await self.records.add_webhook(target, key, about), key

    async def remove_webhook(self, actor: Actor, subscription_id: UUID) -> None:
        require_staff(actor)
        if not await self.records.remove_webhook(subscription_id):
            raise NotFound(f"webhook subscription {subscription_id} not found")

    async def webhooks(self, actor: Actor) -> list[WebhookSubscription]:
        require_staff(actor)
        return await self.records.webhooks()
