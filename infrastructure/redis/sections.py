"""RedisSectionDirectory: sections' static data (window, rules) for the hot path.

An in-process cache in front of the section meta hashes in Redis. Staff changes announce
the sections on the catalog channel and every API process forgets its copies; entries also
lapse after a minute, which bounds staleness if an announcement was missed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from domain.model import SectionSetup
from infrastructure.redis.client import RedisClient
from infrastructure.redis.keys import Keys
from infrastructure.redis.outage import unavailable_when_down
from infrastructure.redis.rules import decode_rules

CACHE_SECONDS = 60.0
FIELDS = ("total", "active", "opens", "closes", "version", "rules")


def _moment(ms: str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


@unavailable_when_down
class RedisSectionDirectory:
    def __init__(self, redis: RedisClient, keys: Keys, ttl: float = CACHE_SECONDS) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl
        self._cache: dict[UUID, tuple[SectionSetup, float]] = {}

    async def setups(self, section_ids: Sequence[UUID]) -> list[SectionSetup | None]:
        now = time.monotonic()
        found: dict[UUID, SectionSetup | None] = {}
        missing = []
        for sid in section_ids:
            hit = self._cache.get(sid)
            if hit is not None and hit[1] > now:
                found[sid] = hit[0]
            else:
                missing.append(sid)
        if missing:
            pipe = self.redis.pipeline(transaction=False)
            for sid in missing:
                pipe.hmget(self.keys.section(sid).meta, *FIELDS)
            for sid, values in zip(missing, await pipe.execute(), strict=True):
                setup = self._setup(sid, values)
                found[sid] = setup
                if setup is not None:
                    self._cache[sid] = (setup, now + self.ttl)
        return [found[sid] for sid in section_ids]

    def _setup(self, section_id: UUID, values: list[str | None]) -> SectionSetup | None:
        total, active, opens, closes, version, rules = values
        if total is None or opens is None or closes is None:
            return None
        return SectionSetup(
            section_id=section_id,
            total_seats=int(total),
            active=active == "1",
            opens_at=_moment(opens),
            closes_at=_moment(closes),
            version=int(version or 1),
            rules=decode_rules(rules) if rules else None,
        )

    async def announce(self, section_ids: Sequence[UUID]) -> None:
        self.forget(section_ids)
        message = json.dumps({"sections": [str(s) for s in section_ids]})
        await self.redis.publish(self.keys.catalog_channel, message)

    def forget(self, section_ids: Sequence[UUID]) -> None:
        for sid in section_ids:
            self._cache.pop(sid, None)

    def on_catalog_message(self, data: str) -> None:
        message = json.loads(data)
        if "sections" in message:
            self.forget([UUID(s) for s in message["sections"]])

    def forget_all(self) -> None:
        self._cache.clear()
