"""The composition root: builds every adapter and service of a process from its settings,
and closes them. Nothing connects at import time."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass

from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.catalog import CatalogService
from domain.registration import Registrar
from infrastructure.auth import TokenService
from infrastructure.metrics import MeteredSeatStore
from infrastructure.postgres.catalog import PostgresCatalog
from infrastructure.postgres.changes import PostgresChangeLog
from infrastructure.postgres.database import make_engine, make_sessions
from infrastructure.postgres.snapshot import PostgresSnapshot
from infrastructure.recovery import StateLoader
from infrastructure.redis.events import RedisLiveEvents, decode_section_event
from infrastructure.redis.hub import RedisHub
from infrastructure.redis.idempotency import RedisIdempotencyStore
from infrastructure.redis.keys import Keys
from infrastructure.redis.scripts import Scripts
from infrastructure.redis.seats import RedisSeatStore
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.redis.students import CachedStudentDirectory
from infrastructure.settings import Settings
from resolvers.context import Services

log = logging.getLogger(__name__)


def make_redis(settings: Settings) -> Redis:
    # A blocking pool: at the rush, requests queue for a connection instead of failing.
    pool = BlockingConnectionPool.from_url(
        settings.redis,
        decode_responses=True,
        max_connections=settings.redis_pool_size,
        timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


class CatalogListener:
    """Keeps this process's student cache in step with status changes made elsewhere."""

    def __init__(self, students: CachedStudentDirectory) -> None:
        self.students = students

    def deliver(self, channel: str, event: object) -> None:
        self.students.on_catalog_message(str(event))

    def resync(self) -> None:
        self.students.forget_all()


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: Redis
    keys: Keys
    scripts: Scripts
    tokens: TokenService
    seats: RedisSeatStore
    students: CachedStudentDirectory
    records: PostgresCatalog
    snapshot: PostgresSnapshot
    changes: PostgresChangeLog
    stream: RedisChangeStream
    state: StateLoader
    registrar: Registrar
    catalog: CatalogService
    hub: RedisHub | None = None

    @classmethod
    def build(cls, settings: Settings) -> Container:
        engine = make_engine(settings.async_database_url, settings.db_pool_size)
        sessions = make_sessions(engine)
        redis = make_redis(settings)
        keys = Keys(settings.key_prefix, settings.shards)
        scripts = Scripts(redis)
        seats = MeteredSeatStore(redis, scripts, keys)
        students = CachedStudentDirectory(redis, keys)
        records = PostgresCatalog(sessions)
        snapshot = PostgresSnapshot(sessions)
        stream = RedisChangeStream(redis, scripts, keys)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=redis,
            keys=keys,
            scripts=scripts,
            tokens=TokenService(settings.jwt_secret),
            seats=seats,
            students=students,
            records=records,
            snapshot=snapshot,
            changes=PostgresChangeLog(sessions),
            stream=stream,
            state=StateLoader(redis, scripts, keys, snapshot, students, stream),
            registrar=Registrar(seats, RedisIdempotencyStore(redis, scripts, keys), students),
            catalog=CatalogService(records, seats, students),
        )

    async def start_hub(self) -> RedisHub:
        """The process's pub/sub connection: live events and cache announcements."""
        catalog_channel = self.keys.catalog_channel

        def decode(channel: str, data: str) -> object:
            return data if channel == catalog_channel else decode_section_event(data)

        hub = RedisHub(
            self.redis, decode, name=f"coursereg-hub-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        await hub.start([catalog_channel])
        await hub.add(CatalogListener(self.students), [catalog_channel])
        self.hub = hub
        return hub

    def services(self) -> Services:
        assert self.hub is not None, "start_hub() first"
        return Services(
            registrar=self.registrar,
            catalog=self.catalog,
            records=self.records,
            seats=self.seats,
            live=RedisLiveEvents(self.hub, self.keys),
            auth=self.tokens,
        )

    async def warm_students(self) -> int:
        """Fill the student cache from Postgres, so the rush finds it warm."""
        statuses = await self.snapshot.student_statuses()
        for student_id, status in statuses:
            self.students.learn(student_id, status)
        return len(statuses)

    async def close(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose(close_connection_pool=True)
        await self.engine.dispose()
