"""The composition root: builds every adapter and service of a process from its settings,
and closes them. Nothing connects at import time."""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.catalog import CatalogService
from domain.notifications import NotificationService
from domain.promotion import PlainPromoter, Promoter, Promotion
from domain.registration import Registrar
from domain.rules import DEFAULT_MAX_CREDITS
from domain.rules_admin import RulesAdmin
from domain.seating import CheckedSeating, PlainSeating, Seating
from infrastructure.auth import Authenticator, TokenService
from infrastructure.metrics import RegistrationMetrics
from infrastructure.oidc import OidcVerifier
from infrastructure.postgres.catalog import PostgresCatalog
from infrastructure.postgres.changes import PostgresChangeLog
from infrastructure.postgres.database import make_engine, make_sessions
from infrastructure.postgres.identities import PostgresStudentIdentities
from infrastructure.postgres.notifications import PostgresNotificationRecords, PostgresOutbox
from infrastructure.postgres.rules import PostgresRuleRecords
from infrastructure.postgres.snapshot import PostgresSnapshot
from infrastructure.ratelimit import RequestThrottle
from infrastructure.redis.buckets import RedisBuckets
from infrastructure.redis.client import (
    RedisClient,
    cluster_client,
    cluster_enabled,
    node_client,
)
from infrastructure.redis.events import RedisLiveEvents, decode_section_event
from infrastructure.redis.hub import RedisHub
from infrastructure.redis.idempotency import RedisIdempotencyStore
from infrastructure.redis.keys import Keys
from infrastructure.redis.pending import RedisPendingChanges
from infrastructure.redis.rules import RedisRuleStore
from infrastructure.redis.scripts import Scripts
from infrastructure.redis.seats import RedisSeatStore
from infrastructure.redis.sections import RedisSectionDirectory
from infrastructure.redis.streams import RedisChangeStream
from infrastructure.redis.students import CachedStudentDirectory
from infrastructure.settings import Settings
from infrastructure.state.recovery import StateLoader
from resolvers.context import Services

log = logging.getLogger(__name__)


REDIS_RETRIES = 3


def make_redis(settings: Settings, cluster: bool = False) -> RedisClient:
    """The process's client: a Redis Cluster's when `cluster` (Container.open asks the
    server), else one server's."""
    if cluster:
        return cluster_client(settings.redis, REDIS_RETRIES, settings.redis_pool_size)
    return node_client(settings.redis, REDIS_RETRIES, settings.redis_pool_size)


def make_authenticator(
    settings: Settings, tokens: TokenService, sessions: async_sessionmaker[AsyncSession]
) -> Authenticator:
    """The provider's tokens with COURSEREG_OIDC_ISSUER; the HS256 development tokens
    without it, or with it and COURSEREG_DEV_TOKENS=true."""
    oidc = None
    if settings.oidc_issuer is not None:
        oidc = OidcVerifier(settings, PostgresStudentIdentities(sessions))
    return Authenticator(tokens if settings.accepts_dev_tokens else None, oidc)


class CatalogListener:
    """Keeps this process's caches (students, sections) in step with changes made elsewhere."""

    def __init__(self, students: CachedStudentDirectory, sections: RedisSectionDirectory) -> None:
        self.students = students
        self.sections = sections

    def deliver(self, channel: str, event: object) -> None:
        self.students.on_catalog_message(str(event))
        self.sections.on_catalog_message(str(event))

    def resync(self) -> None:
        self.students.forget_all()
        self.sections.forget_all()


def choose_seating(
    settings: Settings,
    seats: RedisSeatStore,
    students: CachedStudentDirectory,
    sections: RedisSectionDirectory,
    rules: RedisRuleStore,
) -> tuple[Promotion, Seating]:
    """The registration rules checked (the saga) or, with COURSEREG_RULES=false, not."""
    if not settings.rules:
        return PlainPromoter(seats), PlainSeating(seats)
    promoter = Promoter(seats, sections, rules)
    return promoter, CheckedSeating(seats, students, sections, rules, promoter)


@dataclass
class Container:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    redis: RedisClient
    keys: Keys
    scripts: Scripts
    tokens: TokenService
    auth: Authenticator
    seats: RedisSeatStore
    students: CachedStudentDirectory
    records: PostgresCatalog
    snapshot: PostgresSnapshot
    changes: PostgresChangeLog
    stream: RedisChangeStream
    state: StateLoader
    registrar: Registrar
    catalog: CatalogService
    sections: RedisSectionDirectory
    rules: RedisRuleStore
    promoter: Promotion
    rule_records: PostgresRuleRecords
    rules_admin: RulesAdmin
    throttle: RequestThrottle
    pending: RedisPendingChanges
    outbox: PostgresOutbox
    notifications: PostgresNotificationRecords
    hub: RedisHub | None = None

    @classmethod
    async def open(cls, settings: Settings, wait_seconds: float | None = None) -> Container:
        """The container of a process: waits for Redis (for ever, or `wait_seconds`) and
        builds on a cluster client if the server runs in cluster mode."""
        cluster = await cluster_enabled(settings.redis, wait_seconds)
        container = cls.build(settings, cluster=cluster)
        if isinstance(container.redis, RedisCluster):
            # The slot map now, not at the first command: a cluster pub/sub needs it.
            await container.redis.initialize()
        return container

    @classmethod
    def build(cls, settings: Settings, cluster: bool = False) -> Container:
        engine = make_engine(settings.async_database_url, settings.db_pool_size)
        sessions = make_sessions(engine)
        redis = make_redis(settings, cluster=cluster)
        keys = Keys(settings.key_prefix, settings.shards)
        scripts = Scripts(redis)
        rules = RedisRuleStore(redis, scripts, keys, DEFAULT_MAX_CREDITS, settings.reservation_ms)
        seats = RedisSeatStore(redis, scripts, keys, rules.memo_ms)
        students = CachedStudentDirectory(redis, keys)
        sections = RedisSectionDirectory(redis, keys)
        promoter, seating = choose_seating(settings, seats, students, sections, rules)
        records = PostgresCatalog(sessions)
        rule_records = PostgresRuleRecords(sessions)
        snapshot = PostgresSnapshot(sessions)
        stream = RedisChangeStream(redis, scripts, keys)
        tokens = TokenService(settings.jwt_secret)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            redis=redis,
            keys=keys,
            scripts=scripts,
            tokens=tokens,
            auth=make_authenticator(settings, tokens, sessions),
            throttle=RequestThrottle(settings, RedisBuckets(scripts), keys),
            seats=seats,
            students=students,
            records=records,
            snapshot=snapshot,
            changes=PostgresChangeLog(sessions, email=settings.email_enabled),
            stream=stream,
            state=StateLoader(
                redis, scripts, keys, snapshot, students, stream, rules, settings.rules
            ),
            registrar=Registrar(
                RedisIdempotencyStore(redis, scripts, keys),
                students,
                seating,
                promoter,
                RegistrationMetrics(),
            ),
            catalog=CatalogService(records, seats, students, promoter),
            sections=sections,
            rules=rules,
            promoter=promoter,
            rule_records=rule_records,
            rules_admin=RulesAdmin(records, rule_records, seats, rules, sections),
            pending=RedisPendingChanges(redis, scripts, keys),
            outbox=PostgresOutbox(sessions),
            notifications=PostgresNotificationRecords(sessions),
        )

    async def start_hub(self) -> RedisHub:
        """The process's pub/sub connection: live events and cache announcements."""
        catalog_channel = self.keys.catalog_channel

        def decode(channel: str, data: str) -> object:
            return data if channel == catalog_channel else decode_section_event(data)

        # Its own connection, never retried: a pub/sub connection that redis-py quietly
        # re-established would hide the lost messages, and the hub must resync its listeners.
        # On a cluster too it is one node's connection: see hub.py.
        hub = RedisHub(
            node_client(self.settings.redis, retries=0, connections=8),
            decode,
            name=f"coursereg-hub-{os.getpid()}-{uuid.uuid4().hex[:6]}",
        )
        await hub.start([catalog_channel])
        await hub.add(CatalogListener(self.students, self.sections), [catalog_channel])
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
            auth=self.auth,
            throttle=self.throttle,
            rules_admin=self.rules_admin,
            rule_records=self.rule_records,
            pending=self.pending,
            notifications=NotificationService(self.notifications),
        )

    async def warm_students(self) -> int:
        """Fill the student cache from Postgres, so the rush finds it warm."""
        statuses = await self.snapshot.student_statuses()
        for student_id, status in statuses:
            self.students.learn(student_id, status)
        return len(statuses)

    async def close(self) -> None:
        await self.auth.close()
        if self.hub is not None:
            await self.hub.stop()
            with contextlib.suppress(Exception):
                await self.hub.redis.aclose(close_connection_pool=True)
        with contextlib.suppress(Exception):
            if isinstance(self.redis, Redis):
                await self.redis.aclose(close_connection_pool=True)
            else:
                await self.redis.aclose()
        await self.engine.dispose()
