"""`coursereg notifications`: the outbox's state (pending, retrying, dead per channel) and,
with --retry-dead, dead deliveries put back to be tried again (once the receiver is fixed)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from infrastructure.cli.command import EXIT_FAILED, EXIT_OK, Command, arg, with_container
from infrastructure.settings import Settings

if TYPE_CHECKING:
    from infrastructure.container import Container


def cmd_notifications(args: argparse.Namespace, settings: Settings) -> int:
    async def work(container: Container) -> int:
        if args.retry_dead:
            count = await container.outbox.retry_dead()
            print(f"{count} dead deliveries to be tried again")
        counts = await container.outbox.counts()
        print(json.dumps(counts, indent=2))
        return EXIT_OK if args.retry_dead or not counts["dead"] else EXIT_FAILED

    return with_container(settings, work)


NOTIFICATIONS = Command(
    "notifications",
    "the notification outbox: deliveries pending, retrying and dead",
    cmd_notifications,
    (
        arg(
            "--retry-dead",
            action="store_true",
            help="try the dead deliveries again, their attempts counted from zero",
        ),
    ),
    description="Prints the outbox's counts as JSON; exits 1 when deliveries are dead (unless "
    "--retry-dead put them back).",
)
