"""Student enrollment status for the hot path: an in-process cache in front of Redis.

Postgres warms the cache at start (outside the hot path). A status change is written to
Redis and announced on the catalog channel so every API process updates its copy; entries
also lapse after a few minutes, which bounds staleness if an announcement was missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from uuid import UUID

from domain.errors import Unavailable
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys
from infrastructure.redis.outage import unavailable_when_down

CACHE_SECONDS = 300.0


@unavailable_when_down
class CachedStudentDirectory:
    def __init__(self, redis: RedisClient, keys: Keys, ttl: float = CACHE_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self._cache: dict[UUID, tuple[str, float]] = {}

    async def enrollment_status(self, student_id: UUID) -> str | None:
        hit = self._cache.get(student_id)
        now = time.monotonic()
        if hit is not None and hit[1] > now:
            return hit[0]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(self.keys.student(student_id), "status")
        pipe.exists(self.keys.students_loaded)
        found, loaded = await pipe.execute()
        if found is None:
            if not loaded:  # Redis lost its data and the rebuild has not reloaded it yet
                raise Unavailable("student records are being reloaded; try again shortly")
            return None
        status = str(found)
        self._cache[student_id] = (status, now + self.ttl)
        return status

    async def remember(self, student_id: UUID, status: str) -> None:
        await self._write(student_id, {"status": status})

    async def created(self, student_id: UUID, status: str) -> None:
        # A new student's rule state is empty and complete: the slot counts as loaded
        # (lib/holding.lua), as a rebuild would mark it.
        await self._write(student_id, {"status": status, "ld": 1})

    async def _write(self, student_id: UUID, fields: dict[str, str | int]) -> None:
        await self.redis.hset(self.keys.student(student_id), mapping=fields)  # type: ignore[arg-type]
        status = str(fields["status"])
        self.learn(student_id, status)
        message = json.dumps({"student": str(student_id), "status": status})
        await self.redis.publish(self.keys.catalog_channel, message)

    async def store_all(self, statuses: Iterable[tuple[UUID, str]], created: bool = False) -> int:
        """Write many statuses to Redis (a rebuild; `created`: new students, whose rule state
        is empty and complete, as `created` says of one)."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for student_id, status in statuses:
            fields: dict[str, str | int] = {"status": status}
            if created:
                fields["ld"] = 1
            pipe.hset(self.keys.student(student_id), mapping=fields)  # type: ignore[arg-type]
            count += 1
            if count % 2000 == 0:
                await pipe.execute()
        await pipe.execute()
        return count

    def learn(self, student_id: UUID, status: str) -> None:
        self._cache[student_id] = (status, time.monotonic() + self.ttl)

    def on_catalog_message(self, data: str) -> None:
        message = json.loads(data)
        if "student" in message:
            self.learn(UUID(message["student"]), message["status"])

    def forget_all(self) -> None:
        """After a lost pub/sub connection, announcements may have been missed."""
        self._cache.clear()
