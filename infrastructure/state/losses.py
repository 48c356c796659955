"""What a loss of Redis's data took with it, said so an operator can act on it.

Changes wait in the shard streams until a worker has written them to Postgres. If Redis loses
its data (restarted without persistence, a failover to an empty replica), the rebuild from
Postgres cannot bring back those still waiting. Nobody can count them afterwards, so each API
process looks at the streams every second (with the check for missing shards it makes anyway)
and the rebuild reports, per shard, what Postgres holds and what was waiting at the last look.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.changes import parse_position
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys


@dataclass(frozen=True, slots=True)
class Backlog:
    """A shard stream at one look: entries not yet acknowledged, oldest and newest ids."""

    waiting: int
    oldest: str | None
    newest: str | None
    seen_ms: int


async def look(redis: RedisClient, keys: Keys) -> tuple[list[int], dict[int, Backlog]]:
    """The shards without their ready marker, and the backlog of the others: one pipeline."""
    pipe = redis.pipeline(transaction=False)
    for shard in range(keys.shards):
        stream = keys.stream(shard)
        pipe.exists(keys.shard_ready(shard))
        pipe.xlen(stream)
        pipe.xrange(stream, count=1)
        pipe.xrevrange(stream, count=1)
    replies = await pipe.execute()
    now = int(time.time() * 1000)
    missing, backlog = [], {}
    for shard in range(keys.shards):
        ready, length, oldest, newest = replies[4 * shard : 4 * shard + 4]
        if not ready:
            missing.append(shard)
            continue
        backlog[shard] = Backlog(
            int(length), oldest[0][0] if oldest else None, newest[0][0] if newest else None, now
        )
    return missing, backlog


def moment(stream_id_or_ms: str | int) -> str:
    """A stream id's (or epoch ms') time, ISO 8601 in UTC to the millisecond."""
    ms = stream_id_or_ms if isinstance(stream_id_or_ms, int) else int(stream_id_or_ms.split("-")[0])
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def _at_least_lost(watermark: str | None, seen: Backlog) -> int:
    """Of the entries seen waiting, how many Postgres surely did not get."""
    if seen.waiting == 0 or seen.newest is None:
        return 0
    applied = parse_position(watermark) if watermark and watermark != "0-0" else (0, -1)
    if seen.oldest is not None and parse_position(seen.oldest) > applied:
        return seen.waiting
    return 1 if parse_position(seen.newest) > applied else 0


def unrecovered(
    shards: list[int], watermarks: dict[int, str], backlog: dict[int, Backlog]
) -> dict[int, dict[str, Any]]:
    """Per rebuilt shard: up to when Postgres holds its changes, and what was seen waiting."""
    found: dict[int, dict[str, Any]] = {}
    for shard in shards:
        watermark = watermarks.get(shard)
        detail: dict[str, Any] = {
            "persisted_up_to": watermark,
            "persisted_up_to_time": moment(watermark) if watermark and watermark != "0-0" else None,
        }
        seen = backlog.get(shard)
        if seen is not None:
            detail["waiting_when_last_seen"] = seen.waiting
            detail["last_seen_at"] = moment(seen.seen_ms)
            detail["lost_at_least"] = _at_least_lost(watermark, seen)
        found[shard] = detail
    return found


def describe(details: dict[int, dict[str, Any]]) -> tuple[int, str]:
    """The log level and one paragraph for /health and the log."""
    lost = {s: d for s, d in details.items() if d.get("lost_at_least")}
    # A shard with no watermark and nothing seen never had a change persisted: a first start.
    unknown = [s for s, d in details.items() if "lost_at_least" not in d and d["persisted_up_to"]]
    parts = []
    if lost:
        total = sum(d["lost_at_least"] for d in lost.values())
        each = "; ".join(
            f"shard {s}: {d['lost_at_least']} (Postgres holds "
            + (
                f"its changes up to {d['persisted_up_to_time']}"
                if d["persisted_up_to_time"]
                else "none of its changes"
            )
            + f"; {d['waiting_when_last_seen']} were waiting at {d['last_seen_at']})"
            for s, d in sorted(lost.items())
        )
        parts.append(
            f"At least {total} answered change(s) had not reached Postgres and could not be "
            f"recovered: {each}. Registrations and drops answered in these shards' sections "
            "after those times are lost: those students must register or drop again."
        )
    if unknown:
        since = ", ".join(f"shard {s} after {details[s]['persisted_up_to_time']}" for s in unknown)
        parts.append(
            "No process was watching the streams before the loss, so what was waiting is "
            f"unknown: changes answered in {since} may be lost."
        )
    if parts:
        return (logging.ERROR if lost else logging.WARNING), " ".join(parts)
    return logging.INFO, "No answered change is known to be lost."
