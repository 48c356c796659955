"""What the rebuild after a loss of Redis's data says it could not recover (losses.py)."""

from __future__ import annotations

import logging

from infrastructure.state.losses import Backlog, describe, unrecovered

SEEN_AT = 1_764_063_934_000


def test_changes_seen_waiting_past_the_watermark_are_counted_per_shard() -> None:
    details = unrecovered(
        [0, 1, 2],
        {1: "1764063933120-4", 2: "1764063933500-0"},
        {
            0: Backlog(5, "1-0", "9-0", SEEN_AT),
            1: Backlog(3, "1764063933121-0", "1764063933200-0", SEEN_AT),
            2: Backlog(4, "1764063933400-0", "1764063933500-0", SEEN_AT),  # all persisted
        },
    )
    assert [details[s]["lost_at_least"] for s in (0, 1, 2)] == [5, 3, 0]
    level, message = describe(details)
    assert level == logging.ERROR
    assert message.startswith("At least 8 answered change(s) had not reached Postgres")
    assert "shard 0: 5 (Postgres holds none of its changes" in message
    assert "shard 1: 3 (Postgres holds its changes up to 2025-11-25T09:45:33.120+00:00" in message


def test_a_first_start_reports_no_loss_and_an_unwatched_loss_says_what_may_be_lost() -> None:
    assert describe(unrecovered([0, 1], {}, {})) == (
        logging.INFO,
        "No answered change is known to be lost.",
    )
    level, message = describe(unrecovered([0], {0: "1764063933120-4"}, {}))
    assert level == logging.WARNING
    assert "shard 0 after 2025-11-25T09:45:33.120+00:00 may be lost" in message
