"""RedisPendingChanges: the PendingChanges port on the shard streams (pending.lua)."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.changes import Change
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.scripts import Call, Scripts
from infrastructure.redis.streams import change_of, entry_fields


@unavailable_when_down
class RedisPendingChanges:
    def __init__(self, redis: RedisClient, scripts: Scripts, keys: Keys) -> None:
        self.redis = redis
        self.scripts = scripts
        self.keys = keys

    async def of_students(self, student_ids: Sequence[UUID]) -> list[list[Change]]:
        """One pipelined round trip: a script per shard (a student's sections may be in
        any), each reading its stream's unacknowledged tail in Redis."""
        if not student_ids:
            return []
        students = [str(s) for s in student_ids]
        calls = [
            Call(self.scripts.pending, [self.keys.stream(shard)], students)
            for shard in range(self.keys.shards)
        ]
        found: dict[UUID, list[Change]] = {s: [] for s in student_ids}
        for entries in await self.scripts.run_many(calls):
            for entry_id, flat in entries:
                change = change_of(entry_id, entry_fields(flat))
                if change.student_id in found:
                    found[change.student_id].append(change)
        return [found[s] for s in student_ids]
