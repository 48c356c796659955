"""RedisChangeStream: the ChangeStream port on Redis Streams, consumer groups and leases.

Entries are taken (read, adopt) by scripts that first check the shard's lease, so a worker
whose lease lapsed gets Fenced instead of entries (domain/leases.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.exceptions import ResponseError

from domain.changes import Change, ChangeKind, parse_position
from domain.leases import Fenced, Lease
from domain.wire import DeadLetterField
from domain.wire import StreamField as F
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import CONSUMER_GROUP, Keys
from infrastructure.redis.scripts import Scripts


def _moment(epoch_ms: str) -> datetime:
    return datetime.fromtimestamp(int(epoch_ms) / 1000, tz=UTC)


def change_of(entry_id: str, fields: dict[str, str]) -> Change:
    """A stream entry as written by the seat scripts (domain/wire.py StreamField)."""
    student = fields.get(F.STUDENT)
    sequence = fields.get(F.SEQUENCE)
    total = fields.get(F.TOTAL)
    replaces = fields.get(F.REPLACES)
    return Change(
        id=entry_id,
        position=parse_position(entry_id),
        kind=ChangeKind(fields[F.KIND]),
        section_id=UUID(fields[F.SECTION]),
        version=int(fields[F.VERSION]),
        at=_moment(fields[F.AT]),
        student_id=UUID(student) if student else None,
        sequence=int(sequence) if sequence else None,
        total=int(total) if total else None,
        request_id=fields.get(F.REQUEST, ""),
        reason=fields.get(F.REASON),
        replaces=UUID(replaces) if replaces else None,
        expires=_moment(fields[F.EXPIRES]) if F.EXPIRES in fields else None,
    )


def entry_fields(flat: Sequence[str]) -> dict[str, str]:
    """An entry's fields as a script hands them back: field, value, field, value..."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


class RedisChangeStream:
    def __init__(self, redis: RedisClient, scripts: Scripts, keys: Keys) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys
        # The fields as read, for a dead letter to keep whole. Keyed by shard too: entry ids
        # are per stream, so two shards' entries can share one (same millisecond, seq 0).
        self._raw: dict[tuple[int, str], dict[str, str]] = {}

    async def prepare(self, shard: int) -> None:
        try:
            await self.redis.xgroup_create(
                self.keys.stream(shard), CONSUMER_GROUP, id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def adopt(self, lease: Lease) -> int:
        start, taken = "0-0", 0
        while True:
            reply = await self.scripts.adopt(
                keys=self._leased(lease.shard),
                args=[lease.token, CONSUMER_GROUP, lease.consumer, start, 1000],
            )
            if reply is None:
                raise Fenced(lease)
            start, claimed = reply
            taken += int(claimed)
            if start == "0-0":
                return taken

    async def read(self, lease: Lease, count: int, backlog: bool, block_ms: int) -> list[Change]:
        entries, last = await self._read(lease, count, backlog)
        if not entries and last and block_ms:
            # Waiting is a plain XREAD BLOCK (no group: it takes nothing) from the last id
            # the script saw, since a script cannot block: it wakes at the next entry
            # appended after that look and misses none, without polling.
            stream = self.keys.stream(lease.shard)
            if await self.redis.xread({stream: last}, count=1, block=block_ms):
                entries, _ = await self._read(lease, count, backlog)
        changes = []
        for entry_id, flat in entries:
            if not flat:  # trimmed since it was delivered, after a later one was acknowledged
                continue
            fields = entry_fields(flat)
            self._raw[lease.shard, entry_id] = fields
            changes.append(change_of(entry_id, fields))
        return changes

    async def _read(self, lease: Lease, count: int, backlog: bool) -> tuple[list[Any], str]:
        """(entries, the stream's last id when there was nothing new), or Fenced."""
        reply = await self.scripts.read_shard(
            keys=self._leased(lease.shard),
            args=[lease.token, CONSUMER_GROUP, lease.consumer, count, "0" if backlog else ">"],
        )
        if reply is None:
            raise Fenced(lease)
        entries, last = reply
        return list(entries), str(last)

    def _leased(self, shard: int) -> list[str]:
        return [self.keys.lease(shard), self.keys.stream(shard)]

    async def ack(self, shard: int, changes: Sequence[Change]) -> None:
        if not changes:
            return
        stream = self.keys.stream(shard)
        ids = [c.id for c in changes]
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(stream, CONSUMER_GROUP, *ids)
        # Everything up to the last acknowledged entry is applied: keep the stream short.
        ms, seq = max(parse_position(i) for i in ids)
        pipe.xtrim(stream, minid=f"{ms}-{seq + 1}", approximate=False)
        await pipe.execute()
        for entry_id in ids:
            self._raw.pop((shard, entry_id), None)

    async def count_attempt(self, shard: int, change: Change) -> int:
        return int(await self.redis.hincrby(self.keys.attempts(shard), change.id, 1))

    async def dead_letter(self, shard: int, change: Change, error: str) -> None:
        fields: dict[Any, Any] = dict(self._raw.get((shard, change.id), {}))
        fields.update(
            {
                DeadLetterField.SOURCE_ID: change.id,
                DeadLetterField.ERROR: error[:2000],
                DeadLetterField.SHARD: str(shard),
            }
        )
        pipe = self.redis.pipeline(transaction=False)
        pipe.xadd(self.keys.dead_letters(shard), fields)
        pipe.hdel(self.keys.attempts(shard), change.id)
        await pipe.execute()

    async def heartbeat(self, consumer: str, lifetime_ms: int) -> list[str]:
        now = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.workers, {consumer: now + lifetime_ms})
        pipe.zremrangebyscore(self.keys.workers, "-inf", now)
        pipe.zrange(self.keys.workers, 0, -1)
        *_, live = await pipe.execute()
        return list(live)

    async def leave(self, consumer: str) -> None:
        await self.redis.zrem(self.keys.workers, consumer)

    async def acquire(
        self, shard: int, consumer: str, lifetime_ms: int, above: int = 0
    ) -> Lease | None:
        reply = await self.scripts.acquire(
            keys=[self.keys.lease(shard), self.keys.lease_epoch(shard)],
            args=[consumer, lifetime_ms, above],
        )
        if reply is None:
            return None
        epoch, token = reply
        return Lease(shard, consumer, int(epoch), str(token))

    async def renew(self, lease: Lease, lifetime_ms: int) -> bool:
        renewed = await self.scripts.renew(
            keys=[self.keys.lease(lease.shard)], args=[lease.token, lifetime_ms]
        )
        return bool(renewed)

    async def release(self, lease: Lease) -> None:
        await self.scripts.release(keys=[self.keys.lease(lease.shard)], args=[lease.token])

    async def dead_letter_count(self, shards: int) -> int:
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(shards):
            pipe.xlen(self.keys.dead_letters(shard))
        return sum(int(n) for n in await pipe.execute())

    async def dead_letters(self, shard: int) -> list[dict[str, str]]:
        entries: list[Any] = await self.redis.xrange(self.keys.dead_letters(shard)) or []
        return [dict(fields) for _, fields in entries]

    async def lag(self, shards: int) -> dict[str, object]:
        """Per shard and in all: `unapplied`, the entries not yet persisted (the stream's
        length: acknowledged entries are trimmed, so this counts the pending ones too), and
        `pending`, those of them read by a worker and not yet acknowledged."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(shards):
            pipe.xlen(self.keys.stream(shard))
            pipe.xpending(self.keys.stream(shard), CONSUMER_GROUP)
        replies = await pipe.execute(raise_on_error=False)
        per_shard: dict[int, dict[str, int]] = {}
        for shard in range(shards):
            length, pending = replies[2 * shard], replies[2 * shard + 1]
            if isinstance(length, Exception) or isinstance(pending, Exception):
                continue
            count = int(pending["pending"]) if isinstance(pending, dict) else 0
            # Acknowledged entries are trimmed, so what remains is pending or unread.
            per_shard[shard] = {"unapplied": int(length), "pending": count}
        return {
            "unapplied": sum(v["unapplied"] for v in per_shard.values()),
            "pending": sum(v["pending"] for v in per_shard.values()),
            "shards": {s: v for s, v in per_shard.items() if v["unapplied"]},
        }

    async def live_workers(self) -> int:
        now = int(time.time() * 1000)
        return int(await self.redis.zcount(self.keys.workers, now, "+inf"))
