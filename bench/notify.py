"""The notifier in `make bench`: an SMTP server (aiosmtpd, in a thread of the bench process)
the rush's worker e-mails every notice to, and what it delivered: e-mails, duplicates,
lost ones, and how long after the last answer the last e-mail was sent."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.replica import free_port
from infrastructure.container import Container

POLL_SECONDS = 0.05


class MailSink:
    """Counts each message by its event id, and when the last came."""

    def __init__(self) -> None:
        self.port = free_port()
        self.events: Counter[str] = Counter()
        self.last = 0.0
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        for line in content.split(b"\r\n"):
            if line.lower().startswith(b"x-coursereg-event-id:"):
                self.events[line.split(b":", 1)[1].strip().decode()] += 1
                break
        self.last = time.time()
        return "250 OK"

    def worker_env(self) -> dict[str, str]:
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_STARTTLS": "false",
            "COURSEREG_NOTIFY_POLL_SECONDS": "0.1",
        }

    def reset(self) -> None:
        self.events.clear()
        self.last = 0.0


@contextlib.contextmanager
def smtp_server(wanted: bool) -> Iterator[MailSink | None]:
    if not wanted:
        yield None
        return
    sink = MailSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


async def undelivered(container: Container) -> int:
    counts = await container.outbox.counts()
    return int(counts["pending"]) + int(counts["retrying"])


async def wait_delivered(container: Container, timeout: float = 300.0) -> float:
    """Seconds until no delivery is pending or retrying (the notifier is running)."""
    started = time.perf_counter()
    while await undelivered(container):
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"deliveries not sent after {timeout} s")
        await asyncio.sleep(POLL_SECONDS)
    return time.perf_counter() - started


async def delivered(container: Container, sink: MailSink, database_url: str) -> dict[str, Any]:
    """After the rush: the e-mails the rush's notices made, and how they went."""
    answered = time.time()
    await wait_delivered(container)
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT d.event_id, extract(epoch FROM d.sent_at - n.occurred_at) AS lag "
            "FROM notification_deliveries d JOIN notifications n USING (event_id) "
            "WHERE d.channel = 'email' AND d.state = 'sent' AND d.event_id = ANY($1::uuid[])",
            list(sink.events),
        )
        dead = await connection.fetchval(
            "SELECT count(*) FROM notification_deliveries WHERE state = 'dead'"
        )
    finally:
        await connection.close()
    lags = sorted(float(r["lag"]) for r in rows)
    return {
        "emails": sum(sink.events.values()),
        "email_events": len(sink.events),
        "email_duplicates": sum(n - 1 for n in sink.events.values()),
        "email_unrecorded": len(sink.events) - len(rows),
        "email_dead": int(dead),
        "email_lag_p50_s": round(lags[len(lags) // 2], 3) if lags else 0.0,
        "email_lag_p99_s": round(lags[int(len(lags) * 0.99)], 3) if lags else 0.0,
        "last_email_after_last_answer_s": round(max(sink.last - answered, 0.0), 3),
    }


def note(found: dict[str, Any]) -> str:
    return (
        f"; the notifier e-mailed {found['emails']:,} notices (duplicates "
        f"{found['email_duplicates']}, dead {found['email_dead']}), event-to-sent p50 "
        f"{found['email_lag_p50_s']} s, p99 {found['email_lag_p99_s']} s"
    )
