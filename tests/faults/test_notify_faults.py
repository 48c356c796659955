"""Notification faults: the SMTP server down for FAULT_OUTAGE_SECONDS (30) while changes keep
coming, and a `coursereg worker` process SIGKILLed while its SMTP send is in flight.

Guarantee tested (README "Notifications"): every event reaches the channel; in normal
operation exactly once; a crash mid-send repeats that one delivery at most once, with the
same event id. The SMTP server is the fault here, so these use the suite's PostgreSQL and
Redis (their own database and key prefix), not a private pair."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from infrastructure.settings import Settings
from tests.client import drop, registered
from tests.conftest import Catalog, _truncate, forget_keys, running_app
from tests.faults.cluster import process_env
from tests.integration.test_notifications import (
    NOTIFICATIONS,
    all_sent,
    notify_settings,
    notifying_worker,
)
from tests.notify_sinks import SmtpSink, smtp_sink
from tests.waiting import wait_until

OUTAGE = float(os.environ.get("FAULT_OUTAGE_SECONDS", "30"))


async def mailed_events(settings: Settings) -> list[str]:
    """Every event with an e-mail delivery, from the outbox."""
    connection = await asyncpg.connect(settings.postgres)
    try:
        rows = await connection.fetch(
            "SELECT event_id FROM notification_deliveries WHERE channel = 'email'"
        )
    finally:
        await connection.close()
    return [str(r["event_id"]) for r in rows]


async def test_smtp_down_for_30_s_loses_nothing_and_sends_nothing_twice(
    settings: Settings,
) -> None:
    with smtp_sink() as smtp:
        patient = notify_settings(
            settings, smtp, notify_retry_cap_seconds=1.0, notify_max_attempts=1000
        )
        await _truncate(settings.postgres)
        async with running_app(patient) as api, notifying_worker(api) as running:
            catalog = Catalog(api.container)
            section = await catalog.section(1)
            line = await catalog.students(int(OUTAGE) + 6)
            for student in line:
                await registered(api, student, section)
            await drop(api, line[0], section)  # line[1] promoted: mailed while SMTP is up
            await wait_until(lambda: len(smtp.mails) == 1, 15, "the first e-mail")
            smtp.stop()
            loop = asyncio.get_running_loop()
            down_until, promoted = loop.time() + OUTAGE, 1
            while loop.time() < down_until:  # one promotion a second, all the outage long
                await drop(api, line[promoted], section)
                promoted += 1
                await asyncio.sleep(1.0)
            stuck = await api.gql(NOTIFICATIONS, api.token(), s=str(line[2].id))
            (delivery,) = stuck["data"]["student"]["notifications"][0]["deliveries"]
            assert delivery["state"] == "RETRYING" and delivery["attempts"] > 1
            assert "smtp" in delivery["lastError"]
            health = (await api.client.get("/health")).json()
            assert health["notifications"]["retrying"] >= promoted - 2
            smtp.start()
            await all_sent(api, timeout=60)
            await asyncio.sleep(0.5)
            stats = running.notifier.stats
            events = await mailed_events(settings)
            await forget_keys(api.container)
    print(
        f"FAULT smtp-outage: {OUTAGE:.0f} s down, {len(events)} events, "
        f"{len(smtp.mails)} e-mails, retried={stats.retried} dead={stats.dead}"
    )
    assert len(events) == promoted and stats.retried > promoted
    assert sorted(smtp.counts()) == sorted(events), "every event mailed: nothing lost"
    assert set(smtp.counts().values()) == {1}, "nothing twice"
    assert stats.dead == 0


class WorkerProcess:
    def __init__(self, env: dict[str, str], log: Path, name: str) -> None:
        self.log = log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "infrastructure.cli", "worker", "--name", name],
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    async def kill(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(self.process.wait)


@pytest.fixture
async def held_smtp() -> AsyncIterator[SmtpSink]:
    """An SMTP server that answers the first message's DATA 2.5 s late (within the
    senders' 4 s timeout): a kill in between lands mid-send."""
    with smtp_sink(hold_first=2.5) as sink:
        yield sink


async def test_a_worker_killed_mid_send_repeats_that_one_delivery_once(
    settings: Settings, held_smtp: SmtpSink, tmp_path: Path
) -> None:
    smtp = held_smtp
    timeouts: dict[str, Any] = {"notify_timeout_seconds": 4.0}
    api_settings = notify_settings(settings, smtp, **timeouts)
    env = {
        **process_env(api_settings),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_STARTTLS": "false",
        "COURSEREG_NOTIFY_TIMEOUT_SECONDS": "4",
        "COURSEREG_NOTIFY_RETRY_FIRST_SECONDS": "0.05",
        "COURSEREG_NOTIFY_RETRY_CAP_SECONDS": "0.5",
        "COURSEREG_NOTIFY_POLL_SECONDS": "0.05",
    }
    await _truncate(settings.postgres)
    workers: list[WorkerProcess] = []
    try:
        async with running_app(api_settings) as api:
            catalog = Catalog(api.container)
            section = await catalog.section(1)
            line = await catalog.students(6)
            for student in line:
                await registered(api, student, section)
            workers.append(WorkerProcess(env, tmp_path / "victim.log", "victim"))
            await drop(api, line[0], section)  # line[1] promoted; its e-mail held
            received = await asyncio.to_thread(smtp.received_first.wait, 30)
            assert received, (tmp_path / "victim.log").read_text()[-3000:]
            assert await workers[0].kill() == -signal.SIGKILL  # mid-send: DATA not answered
            (held,) = smtp.mails
            workers.append(WorkerProcess(env, tmp_path / "survivor.log", "survivor"))
            for promoted in range(1, 5):  # more changes, handled by the survivor
                await drop(api, line[promoted], section)
            await all_sent(api, timeout=60)  # the held one once its claim's lease lapsed
            events = await mailed_events(settings)
            note = await api.gql(NOTIFICATIONS, api.token(), s=str(line[1].id))
            await forget_keys(api.container)
    finally:
        for worker in workers:
            await worker.kill()
    counts = smtp.counts()
    print(f"FAULT notifier-sigkill: {len(events)} events, {len(smtp.mails)} e-mails, {counts}")
    assert sorted(counts) == sorted(events), "every event mailed"
    assert counts[held.event_id] == 2, "the send the kill interrupted, repeated once"
    assert [m.message["Message-ID"] for m in smtp.mails if m.event_id == held.event_id] == [
        held.message["Message-ID"]
    ] * 2, "with the same event id"
    assert sum(counts.values()) == len(events) + 1, "every other event once"
    (delivery,) = note["data"]["student"]["notifications"][0]["deliveries"]
    assert (delivery["state"], delivery["attempts"]) == ("SENT", 2)
