"""Notifications (issue 16) against real servers: an aiosmtpd SMTP server and a Starlette
webhook receiver started by the tests, the app, an in-process persister and notifier.

The outbox is written in the batch's transaction, once per event; every event reaches each
channel once in normal operation; a receiver that fails is retried with backoff until it
answers, or the delivery goes dead and /health and /metrics say so; students choose e-mail
per kind; staff see each delivery's state."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from domain.changes import Change, ChangeKind
from domain.model import Role
from domain.notifications import NotificationKind, event_id, notices_of
from infrastructure.cli.worker import make_notifier, make_persister
from infrastructure.notify.channels import http_client, make_channels
from infrastructure.notify.email import when
from infrastructure.postgres.database import unit_of_work
from infrastructure.postgres.outbox import write_notices
from infrastructure.settings import Settings
from tests.client import CAPACITY, drop, registered
from tests.conftest import Api, Catalog, Worker, _truncate, forget_keys, running_app
from tests.faults.cluster import process_env
from tests.integration.test_rules import CLAIM, DECLINE, HOLD, SWAP, rules, standing
from tests.notify_sinks import SmtpSink, smtp_sink, webhook_sink
from tests.servers import free_port
from tests.waiting import wait_until
from workers.notifier import Notifier

# Retries in tens of milliseconds instead of the production minutes.
FAST: dict[str, Any] = {
    "notify_retry_first_seconds": 0.05,
    "notify_retry_cap_seconds": 0.4,
    "notify_max_attempts": 50,
    "notify_poll_seconds": 0.05,
    "notify_timeout_seconds": 3.0,
}
NOTIFICATIONS = """query($s: UUID!) { student(id: $s) { notifications {
  id kind occurredAt expiresAt reason section { id }
  deliveries { channel state attempts lastError sentAt } } } }"""
PREFERENCES = """query($s: UUID!) { student(id: $s) { notificationPreferences { kind email } } }"""
SET_PREFERENCES = """mutation($s: UUID!, $p: [NotificationPreferenceInput!]!) {
  setNotificationPreferences(studentId: $s, preferences: $p) {
    notificationPreferences { kind email } } }"""
ADD_WEBHOOK = """mutation($u: String!, $k: String, $d: String) {
  addWebhookSubscription(url: $u, secret: $k, description: $d) {
    secret subscription { id url description createdAt } } }"""
REMOVE_WEBHOOK = "mutation($i: UUID!) { removeWebhookSubscription(id: $i) }"
WEBHOOKS = "{ webhookSubscriptions { id url description } }"


def notify_settings(settings: Settings, smtp: SmtpSink, **more: Any) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_from": "Registrar <registrar@uni.test>",
            **FAST,
            **more,
        }
    )


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture
async def napi(settings: Settings, smtp: SmtpSink) -> AsyncIterator[Api]:
    """The app with e-mail on (SMTP at `smtp`) and fast retries."""
    await _truncate(settings.postgres)
    async with running_app(notify_settings(settings, smtp)) as running:
        yield running
        await forget_keys(running.container)


@dataclass
class Notifying:
    worker: Worker
    notifier: Notifier


@contextlib.asynccontextmanager
async def notifying_worker(api: Api) -> AsyncIterator[Notifying]:
    """A worker process's two loops, in this process: the persister and the notifier."""
    container = api.container
    persister = make_persister(container, f"test-{uuid.uuid4().hex[:6]}")
    client = http_client(container.settings)
    channels = make_channels(container.settings, client)
    notifier = make_notifier(container, channels)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(persister.run(stop)), asyncio.create_task(notifier.run(stop))]
    try:
        yield Notifying(Worker(persister, container), notifier)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        channels.close()
        await client.aclose()


@pytest.fixture
async def notifying(napi: Api) -> AsyncIterator[Notifying]:
    async with notifying_worker(napi) as running:
        yield running


@pytest.fixture
def ncatalog(napi: Api) -> Catalog:
    return Catalog(napi.container)


async def notifications(api: Api, student: Any, token: str | None = None) -> list[dict[str, Any]]:
    body = await api.gql(NOTIFICATIONS, token or api.token(), s=str(student.id))
    assert "errors" not in body, body
    return list(body["data"]["student"]["notifications"])


async def undelivered(api: Api) -> int:
    counts = await api.container.outbox.counts()
    return int(counts["pending"]) + int(counts["retrying"])


async def all_sent(api: Api, timeout: float = 20.0) -> None:
    async def done() -> bool:
        lag = await api.container.stream.lag(api.container.keys.shards)
        return lag["unapplied"] == 0 and await undelivered(api) == 0

    await wait_until(done, timeout, "every change persisted and every delivery sent", 0.05)


def error_code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


# -- the outbox ---------------------------------------------------------------------------


def promote(student: uuid.UUID, section: uuid.UUID, stream_id: str = "1700000000000-0") -> Change:
    return Change(
        id=stream_id,
        position=(int(stream_id.split("-")[0]), int(stream_id.split("-")[1])),
        kind=ChangeKind.PROMOTE,
        section_id=section,
        version=2,
        at=datetime.now(UTC),
        student_id=student,
    )


async def test_a_replayed_batch_writes_each_notice_once(napi: Api, ncatalog: Catalog) -> None:
    """The outbox row and its delivery are keyed by the event id (uuid5 of the stream entry,
    kind, student, section): the same batch written twice leaves one of each, whether the
    watermark skips the replay (the persister's path) or not (the outbox's own key)."""
    section = await ncatalog.section(2)
    student = await ncatalog.student()
    batch = [promote(student.id, section.id)]
    for _ in range(2):  # below the watermark: the outbox's own unique key
        async with unit_of_work(napi.container.sessions) as session:
            assert await write_notices(session, notices_of(batch), email=True) == 1
    changes, lease = (
        napi.container.changes,
        await napi.container.stream.acquire(0, "replayer", 10_000, 0),
    )
    assert lease is not None
    await changes.take_over(lease)
    again = [promote(student.id, section.id, "1700000000001-0")]
    assert [await changes.apply(lease, again) for _ in range(2)] == [1, 0]  # the watermark
    connection = await asyncpg.connect(napi.container.settings.postgres)
    try:
        rows = await connection.fetch(
            "SELECT n.event_id, n.kind, d.channel, d.state FROM notifications n "
            "JOIN notification_deliveries d USING (event_id) WHERE n.student_id = $1 "
            "ORDER BY n.stream_id",
            student.id,
        )
    finally:
        await connection.close()
    assert [(r["event_id"], r["kind"], r["channel"], r["state"]) for r in rows] == [
        (event_id(batch[0], NotificationKind.PROMOTED), "PROMOTED", "email", "pending"),
        (event_id(again[0], NotificationKind.PROMOTED), "PROMOTED", "email", "pending"),
    ]


# -- e-mail ------------------------------------------------------------------------------


async def test_a_drop_mails_the_promoted_student_once(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    course = await ncatalog.course()
    section = await ncatalog.section(1, course=course)
    holder, waiting = await ncatalog.students(2)
    await registered(napi, holder, section)
    assert (await registered(napi, waiting, section))[0]["outcome"] == "WAITLISTED"
    assert (await drop(napi, holder, section))["outcome"] == "DROPPED"
    await wait_until(lambda: bool(smtp.to(waiting.email)), 15, "the promotion e-mail")
    await all_sent(napi)
    (mail,) = smtp.to(waiting.email)
    code = f"{course.code} {section.section_number}"
    assert mail.subject == f"You are enrolled in {code}"
    assert code in mail.text and "Status:   ENROLLED" in mail.text
    assert "<strong>ENROLLED</strong>" in mail.html and section.section_number in mail.html
    assert not smtp.to(holder.email), "the student who dropped was answered, not mailed"
    (note,) = await notifications(napi, waiting)
    assert note["kind"] == "PROMOTED" and note["id"] == mail.event_id
    assert note["section"] == {"id": str(section.id)}
    (delivery,) = note["deliveries"]
    assert delivery | {"sentAt": None} == {
        "channel": "email",
        "state": "SENT",
        "attempts": 1,
        "lastError": None,
        "sentAt": None,
    }
    # The student reads their own; another student may not.
    assert await notifications(napi, waiting, napi.student_token(waiting.id))
    other = await napi.gql(NOTIFICATIONS, napi.student_token(holder.id), s=str(waiting.id))
    assert error_code(other) == "FORBIDDEN"
    await asyncio.sleep(0.3)  # a second send would have come by now
    assert smtp.counts()[mail.event_id] == 1


async def test_an_offer_names_its_deadline_and_the_expiry_follows(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    section = await ncatalog.section(1)
    await rules(napi, section, waitlistMode="OFFER", offerHours=1)
    holder, first, second = await ncatalog.students(3)
    for student in (holder, first, second):
        await registered(napi, student, section)
    await drop(napi, holder, section)
    assert (await standing(napi, first, section))[0] == "OFFERED"
    await wait_until(lambda: bool(smtp.to(first.email)), 15, "the offer e-mail")
    (offer,) = smtp.to(first.email)
    found = await napi.container.seats.standing(first.id, section.id)
    assert found is not None and found.expires_ms is not None
    deadline = when(datetime.fromtimestamp(found.expires_ms / 1000, UTC))
    assert deadline in offer.subject and f"Claim by: {deadline}" in offer.text
    assert "Status:   OFFERED" in offer.text and deadline in offer.html

    # The offer lapses (as test_rules.py makes it: its holder entry says so); the workers'
    # sweep expires it and offers the seat on.
    k = napi.container.keys.section(section.id)
    past = int((datetime.now(UTC) - timedelta(seconds=1)).timestamp() * 1000)
    await napi.container.redis.hset(k.held, str(first.id), f"o:{past}")
    await napi.container.redis.zadd(k.held_index, {f"{section.id}|{first.id}": past})
    await wait_until(lambda: len(smtp.to(first.email)) == 2, 15, "the expiry e-mail")
    expired = smtp.to(first.email)[1]
    assert "has expired" in expired.subject and "Status:   EXPIRED" in expired.text
    await wait_until(lambda: bool(smtp.to(second.email)), 15, "the next student's offer")
    declined = await napi.gql(
        DECLINE, napi.student_token(second.id), s=str(second.id), c=str(section.id)
    )
    assert declined["data"]["declineOffer"] == {"status": "REMOVED"}
    await all_sent(napi)
    assert [m.message["X-Coursereg-Event-Type"] for m in smtp.to(second.email)] == [
        "OFFERED",
        "OFFER_DECLINED",
    ]
    kinds = [n["kind"] for n in await notifications(napi, first)]
    assert kinds == ["OFFER_EXPIRED", "OFFERED"]
    assert (await notifications(napi, first))[1]["expiresAt"] is not None
    assert max(smtp.counts().values()) == 1


async def test_cascade_swap_and_removal_are_told(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    semester = await ncatalog.semester()
    # A lecture that needs its lab: dropping the lab drops the lecture (DROPPED_LINKED).
    lecture, lab = await ncatalog.section(5, semester), await ncatalog.section(5, semester)
    await rules(napi, lecture, linkedSectionIds=[str(lab.id)])
    linked = await ncatalog.student()
    await registered(napi, linked, lecture, lab)
    await drop(napi, linked, lab)
    # A swap into a full section completes when a seat frees (SWAP_COMPLETED).
    course = await ncatalog.course()
    old = await ncatalog.section(1, semester, course)
    new = await ncatalog.section(1, semester, course)
    swapper, holder = await ncatalog.students(2)
    await registered(napi, swapper, old)
    await registered(napi, holder, new)
    answer = await napi.gql(
        SWAP,
        napi.student_token(swapper.id),
        i={"studentId": str(swapper.id), "dropSectionId": str(old.id), "addSectionId": str(new.id)},
    )
    assert answer["data"]["swap"]["outcome"] == "WAITLISTED_KEEPING_CURRENT"
    await all_sent(napi)  # the waitlist place (and its swap) persisted before the promotion
    await drop(napi, holder, new)
    # A hold placed while waiting: the promotion skips them (REMOVED_FROM_WAITLIST, HOLD).
    full = await ncatalog.section(1, semester)
    sitter, held = await ncatalog.students(2)
    await registered(napi, sitter, full)
    await registered(napi, held, full)
    await napi.staff(HOLD, s=str(held.id), r="library fine")
    await drop(napi, sitter, full)
    await all_sent(napi)
    (cascade,) = smtp.to(linked.email)
    assert cascade.message["X-Coursereg-Event-Type"] == "DROPPED_LINKED"
    assert "Status:   DROPPED" in cascade.text and lecture.section_number in cascade.text
    (swapped,) = smtp.to(swapper.email)
    assert swapped.message["X-Coursereg-Event-Type"] == "SWAP_COMPLETED"
    assert old.section_number in swapped.text and "Status:   ENROLLED" in swapped.text
    (removed,) = smtp.to(held.email)
    assert removed.message["X-Coursereg-Event-Type"] == "REMOVED_FROM_WAITLIST"
    assert "(HOLD)" in removed.text
    assert (await notifications(napi, held))[0]["reason"] == "HOLD"


async def test_students_turn_email_off_per_kind(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    section = await ncatalog.section(1)
    holder, quiet = await ncatalog.students(2)
    token = napi.student_token(quiet.id)
    body = await napi.gql(PREFERENCES, token, s=str(quiet.id))
    assert {p["email"] for p in body["data"]["student"]["notificationPreferences"]} == {True}
    off = [{"kind": "PROMOTED", "email": False}]
    body = await napi.gql(SET_PREFERENCES, token, s=str(quiet.id), p=off)
    chosen = body["data"]["setNotificationPreferences"]["notificationPreferences"]
    assert {"kind": "PROMOTED", "email": False} in chosen and len(chosen) == 7
    await registered(napi, holder, section)
    await registered(napi, quiet, section)
    await drop(napi, holder, section)
    await all_sent(napi)
    (note,) = await notifications(napi, quiet)
    assert note["kind"] == "PROMOTED" and note["deliveries"] == [], "no e-mail delivery"
    assert smtp.mails == []
    # Authorization and bad input: coded errors.
    theirs = await napi.gql(SET_PREFERENCES, napi.student_token(holder.id), s=str(quiet.id), p=off)
    assert error_code(theirs) == "FORBIDDEN"
    twice = await napi.gql(SET_PREFERENCES, token, s=str(quiet.id), p=off + off)
    assert error_code(twice) == "BAD_USER_INPUT"
    unknown = await napi.gql(
        SET_PREFERENCES, token, s=str(quiet.id), p=[{"kind": "LOTTERY", "email": True}]
    )
    assert error_code(unknown) == "BAD_USER_INPUT"
    nobody = str(uuid.uuid4())
    missing = await napi.gql(SET_PREFERENCES, napi.token(), s=nobody, p=off)
    assert error_code(missing) == "NOT_FOUND"
    page = await napi.gql(
        "query($s: UUID!) { student(id: $s) { notifications(first: 0) { id } } }",
        token,
        s=str(quiet.id),
    )
    assert error_code(page) == "BAD_USER_INPUT"


# -- webhooks ----------------------------------------------------------------------------


async def add_webhook(api: Api, url: str, secret: str | None = None) -> tuple[str, str]:
    data = await api.staff(ADD_WEBHOOK, u=url, k=secret, d="advising")
    created = data["addWebhookSubscription"]
    assert created["secret"].startswith("whsec_")
    return created["subscription"]["id"], created["secret"]


async def test_webhooks_are_signed_and_each_event_arrives_once(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    # A secret made by the server, then given back to it for the real subscriber.
    subscription, secret = await add_webhook(napi, "https://placeholder.invalid/hook")
    async with webhook_sink(secret) as sink:
        await napi.staff(REMOVE_WEBHOOK, i=subscription)
        subscription, _ = await add_webhook(napi, sink.url, secret)
        listed = (await napi.staff(WEBHOOKS))["webhookSubscriptions"]
        assert listed == [{"id": subscription, "url": sink.url, "description": "advising"}]
        section = await ncatalog.section(1)
        await rules(napi, section, waitlistMode="OFFER", offerHours=1)
        holder, first = await ncatalog.students(2)
        await registered(napi, holder, section)
        await registered(napi, first, section)
        await drop(napi, holder, section)
        claim = await napi.gql(
            CLAIM, napi.student_token(first.id), s=str(first.id), c=str(section.id)
        )
        assert claim["data"]["claimSeat"] == {"status": "ENROLLED"}
        await all_sent(napi)
        await asyncio.sleep(0.3)
    assert sink.bad_signatures == 0
    assert [h.body["type"] for h in sink.hooks] == [
        "registration.offered",
        "registration.promoted",
    ]
    assert set(sink.counts().values()) == {1} and set(sink.tries.values()) == {1}
    offered = sink.hooks[0]
    assert offered.headers["webhook-id"] == offered.body["id"]
    assert offered.headers["webhook-signature"].startswith("v1,")
    assert abs(int(offered.headers["webhook-timestamp"]) - time.time()) < 60
    data = offered.body["data"]
    assert data["studentId"] == str(first.id) and data["sectionId"] == str(section.id)
    assert data["status"] == "OFFERED" and data["expiresAt"].endswith("Z")
    assert offered.body["timestamp"].endswith("Z")
    channels = {d["channel"] for n in await notifications(napi, first) for d in n["deliveries"]}
    assert channels == {"email", f"webhook:{subscription}"}


async def test_a_webhook_that_fails_three_times_still_gets_the_event_once(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    secret = "whsec_" + "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
    async with webhook_sink(secret, fail_first=3) as sink:
        await add_webhook(napi, sink.url, secret)
        before = notifying.notifier.stats.retried
        section = await ncatalog.section(1)
        holder, waiting = await ncatalog.students(2)
        await registered(napi, holder, section)
        await registered(napi, waiting, section)
        await drop(napi, holder, section)
        await all_sent(napi)
        await asyncio.sleep(0.3)
    ((event, count),) = sink.counts().items()
    assert count == 1 and sink.tries[event] == 4, "three 503s, then once"
    assert notifying.notifier.stats.retried - before == 3
    (note,) = await notifications(napi, waiting)
    hook = next(d for d in note["deliveries"] if d["channel"].startswith("webhook:"))
    assert (hook["state"], hook["attempts"]) == ("SENT", 4)
    metrics = (await napi.client.get("/metrics")).text
    assert 'coursereg_notifications_total{channel="webhook",outcome="retried"}' in metrics


async def test_a_delivery_that_keeps_failing_goes_dead_and_health_says_so(
    napi: Api, ncatalog: Catalog, notifying: Notifying, smtp: SmtpSink
) -> None:
    notifying.notifier.max_attempts = 3
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nobody listens there
    await add_webhook(napi, closed)
    section = await ncatalog.section(1)
    holder, waiting = await ncatalog.students(2)
    await registered(napi, holder, section)
    await registered(napi, waiting, section)
    await drop(napi, holder, section)

    async def dead() -> bool:
        return (await napi.container.outbox.counts())["dead"] == 1

    await wait_until(dead, 15, "the webhook delivery dead")
    (note,) = await notifications(napi, waiting)
    states = {d["channel"].split(":")[0]: d for d in note["deliveries"]}
    assert states["email"]["state"] == "SENT"
    assert states["webhook"]["state"] == "DEAD" and states["webhook"]["attempts"] == 3
    assert "ConnectError" in states["webhook"]["lastError"]
    health = (await napi.client.get("/health")).json()
    assert health["status"] == "degraded"
    assert health["notifications"]["dead"] == 1
    assert health["notifications"]["dead_by_channel"] == {"webhook": 1}
    metrics = (await napi.client.get("/metrics")).text
    assert 'coursereg_notification_deliveries{state="dead"} 1.0' in metrics
    assert 'coursereg_notifications_total{channel="webhook",outcome="dead"}' in metrics
    assert 'coursereg_notification_lag_seconds_count{channel="email"}' in metrics
    # The operator's view, and the dead put back (tried again, and dead again here).
    found = await coursereg(napi, "notifications")
    assert found.returncode == 1 and '"dead": 1' in found.stdout, found.stderr
    again = await coursereg(napi, "notifications", "--retry-dead")
    assert again.returncode == 0 and "1 dead deliveries to be tried again" in again.stdout
    await wait_until(dead, 15, "tried again, and dead again")
    (note,) = await notifications(napi, waiting)
    assert {d["attempts"] for d in note["deliveries"] if d["state"] == "DEAD"} == {3}


async def coursereg(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    """The `coursereg` command line against this test's database and Redis."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "infrastructure.cli", *args],
        env=process_env(api.container.settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_webhook_subscriptions_are_for_staff_and_checked(napi: Api) -> None:
    student = napi.token(Role.STUDENT, str(uuid.uuid4()))
    assert error_code(await napi.gql(ADD_WEBHOOK, student, u="https://x.edu/h")) == "FORBIDDEN"
    assert error_code(await napi.gql(WEBHOOKS, student)) == "FORBIDDEN"
    for url in ("ftp://x.edu/h", "https://", "not a url", "https://x.edu/" + "a" * 2000):
        body = await napi.gql(ADD_WEBHOOK, napi.token(), u=url)
        assert error_code(body) == "BAD_USER_INPUT", url
    for secret in ("plain", "whsec_short", "whsec_!!!!"):
        body = await napi.gql(ADD_WEBHOOK, napi.token(), u="https://x.edu/h", k=secret)
        assert error_code(body) == "BAD_USER_INPUT", secret
    body = await napi.gql(REMOVE_WEBHOOK, napi.token(), i=str(uuid.uuid4()))
    assert error_code(body) == "NOT_FOUND"


# -- the rush ----------------------------------------------------------------------------


async def test_a_rush_of_1000_promotions_delivers_all_1000(
    settings: Settings, smtp: SmtpSink
) -> None:
    """1,000 students wait for a section of one seat; staff raise it to 1,001 seats: 1,000
    promotions in one step (rules off: one script promotes them all), persisted with their
    outbox rows while the notifier is stopped; then the notifier starts and the time until
    the 1,000th mail is measured (the figure README "Notifications" states), each mailed
    once."""
    await _truncate(settings.postgres)
    async with running_app(notify_settings(settings, smtp, rules=False)) as api:
        catalog = Catalog(api.container)
        section = await catalog.section(1)
        students = await catalog.students(1001)
        seated = set()
        for group in range(0, 1001, 100):
            answers = await asyncio.gather(
                *(registered(api, s, section) for s in students[group : group + 100])
            )
            seated |= {
                s.email
                for s, (a,) in zip(students[group : group + 100], answers, strict=True)
                if a["outcome"] == "ENROLLED"
            }
        persister = make_persister(api.container, "rush")
        stop = asyncio.Event()
        persisting = asyncio.create_task(persister.run(stop))
        await api.staff(CAPACITY, s=str(section.id), n=1001)

        async def outbox_full() -> bool:
            return (await api.container.outbox.counts())["pending"] == 1000

        await wait_until(outbox_full, 30, "1,000 deliveries in the outbox", 0.05)
        async with notifying_worker(api) as running:
            started = time.perf_counter()
            await wait_until(lambda: len(smtp.mails) >= 1000, 60, "1,000 e-mails", 0.02)
            seconds = time.perf_counter() - started
            await all_sent(api)
            assert running.notifier.stats.sent == 1000
        stop.set()
        await persisting
        await forget_keys(api.container)
    print(f"NOTIFY rush: 1000 promotion e-mails sent in {seconds:.2f} s ({1000 / seconds:.0f}/s)")
    assert len(smtp.mails) == 1000 and set(smtp.counts().values()) == {1}
    assert {m.to[0] for m in smtp.mails} == {s.email for s in students} - seated
