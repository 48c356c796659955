"""Prometheus metrics for operators (prometheus-client's default registry).

The hot path pays a label lookup and an increment or two per request: requests and latency
per HTTP route and per GraphQL operation, register and drop outcomes. What lives in Redis
(stream lag and pending per shard, dead letters, the last rebuild) and the subscriber counts
are read when /metrics is scraped, so they cost the hot path nothing.

Workers serve their own /metrics port (COURSEREG_WORKER_METRICS_PORT; worker.py): Prometheus
pulls one target per process, sees a dead worker as down, and the counters of a batch need
no round trip through Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import FieldNode, get_operation_ast
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.extensions import SchemaExtension

from domain.model import DropOutcome, RegisterAnswer
from infrastructure.redis.client import RedisClient
from infrastructure.redis.hub import RedisHub
from infrastructure.redis.keys import CONSUMER_GROUP, Keys

log = logging.getLogger("coursereg.access")

SLOW_SECONDS = 1.0
SCRAPE_TIMEOUT = 2.0
LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

HTTP_REQUESTS = Counter(
    "coursereg_http_requests",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "coursereg_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["route"],
    buckets=LATENCY,
)
ADMISSION_SHED = Counter(
    "coursereg_admission_shed",
    "Requests refused for load (503, UNAVAILABLE) before anything ran, by why: the queue "
    "full, a wait past the deadline, the event loop lagging",
    ["reason"],
)
ADMISSION_QUEUE_SECONDS = Histogram(
    "coursereg_admission_queue_seconds",
    "Time a request waited in the admission queue (admitted or refused)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
ADMISSION_IN_FLIGHT = Gauge("coursereg_admission_in_flight", "Admitted requests running")
ADMISSION_LIMIT = Gauge(
    "coursereg_admission_limit", "The limit of requests in flight, as the latency gradient set it"
)
LOOP_LAG_SECONDS = Gauge(
    "coursereg_event_loop_lag_seconds", "How late the event loop last woke a 20 ms sleeper"
)
WEBSOCKETS = Gauge("coursereg_websocket_connections", "Open websocket connections (GraphQL)")
GRAPHQL_OPERATIONS = Counter(
    "coursereg_graphql_operations",
    "GraphQL operations by type, root fields and result (ok or error)",
    ["type", "operation", "result"],
)
GRAPHQL_SECONDS = Histogram(
    "coursereg_graphql_operation_duration_seconds",
    "GraphQL query and mutation latency by root fields",
    ["type", "operation"],
    buckets=LATENCY,
)
REGISTER_OUTCOMES = Counter(
    "coursereg_register_outcomes", "Register outcomes per section", ["outcome", "reason"]
)
DROP_OUTCOMES = Counter("coursereg_drop_outcomes", "Drop outcomes", ["outcome"])
STREAM_UNAPPLIED = Gauge(
    "coursereg_stream_unapplied", "Changes in a shard's stream not yet persisted", ["shard"]
)
STREAM_PENDING = Gauge(
    "coursereg_stream_pending", "Changes delivered to a worker, not yet acknowledged", ["shard"]
)
STREAM_AGE = Gauge(
    "coursereg_stream_oldest_age_seconds",
    "Age of the oldest change not yet persisted (0 when the shard is drained)",
    ["shard"],
)
DEAD_LETTERS = Gauge("coursereg_dead_letters", "Changes in a shard's dead-letter stream", ["shard"])
LIVE_LISTENERS = Gauge(
    "coursereg_live_listeners",
    "Pub/sub listeners of this process: one per subscription and channel, plus its cache's",
)
LIVE_CHANNELS = Gauge("coursereg_live_channels", "Pub/sub channels this process subscribes")
REBUILD_SECONDS = Gauge(
    "coursereg_state_rebuild_seconds", "How long the last rebuild of Redis from Postgres took"
)
REBUILD_SECTIONS = Gauge(
    "coursereg_state_rebuild_sections", "Sections the last rebuild of Redis loaded"
)
WORKER_BATCH_SIZE = Histogram(
    "coursereg_worker_batch_size",
    "Changes per batch a worker wrote to Postgres",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000),
)
WORKER_BATCH_SECONDS = Histogram(
    "coursereg_worker_batch_duration_seconds",
    "Time to write a batch to Postgres (one transaction)",
    buckets=LATENCY,
)
WORKER_APPLIED = Counter("coursereg_worker_changes_applied", "Changes a worker applied")
WORKER_DEAD_LETTERED = Counter(
    "coursereg_worker_dead_lettered", "Changes a worker moved to a dead-letter stream"
)
# Notifications: counted by the worker that sends (its own /metrics port) ...
NOTIFY_DELIVERIES = Counter(
    "coursereg_notifications",
    "Notification deliveries by channel (email, webhook) and outcome (sent, retried, dead)",
    ["channel", "outcome"],
)
NOTIFY_LAG = Histogram(
    "coursereg_notification_lag_seconds",
    "From the event (the change's time) to its delivery, per channel",
    ["channel"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
# ... and the outbox as Postgres holds it, read by the API when /metrics is scraped.
NOTIFY_BACKLOG = Gauge(
    "coursereg_notification_deliveries",
    "Notification deliveries not sent: pending, retrying, dead",
    ["state"],
)
NOTIFY_OLDEST = Gauge(
    "coursereg_notification_oldest_undelivered_seconds",
    "Age of the oldest event with a delivery not yet sent (0: none)",
)


def channel_label(channel: str) -> str:
    """email, or webhook (one label for every subscriber: their ids are unbounded)."""
    return channel.split(":", 1)[0]


class NotificationMetrics:
    """The notifier's observer (workers/notifier.py DeliveryObserver)."""

    def sent(self, delivery: Any, lag_seconds: float) -> None:
        label = channel_label(delivery.channel)
        NOTIFY_DELIVERIES.labels(label, "sent").inc()
        NOTIFY_LAG.labels(label).observe(max(lag_seconds, 0.0))

    def retried(self, delivery: Any) -> None:
        NOTIFY_DELIVERIES.labels(channel_label(delivery.channel), "retried").inc()

    def dead(self, delivery: Any) -> None:
        NOTIFY_DELIVERIES.labels(channel_label(delivery.channel), "dead").inc()


def record_backlog(counts: dict[str, Any]) -> None:
    for state in ("pending", "retrying", "dead"):
        NOTIFY_BACKLOG.labels(state).set(float(counts.get(state, 0)))
    NOTIFY_OLDEST.set(float(counts.get("oldest_undelivered_seconds", 0.0)))


class HttpMetrics:
    """Counts and times every HTTP request by its route's template (bounded labels); logs
    the slow and failed ones (every one at DEBUG) with their request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            WEBSOCKETS.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                WEBSOCKETS.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(elapsed)
            if (status >= 500 and status != 503) or elapsed > SLOW_SECONDS:
                log.warning("%s %s %d in %.3fs", method, scope["path"], status, elapsed)
            elif log.isEnabledFor(logging.DEBUG):
                log.debug("%s %s %d in %.3fs", method, scope["path"], status, elapsed)


def operation_label(document: Any, operation_name: str | None) -> str:
    """The operation's root fields, sorted: bounded by the schema once it validated."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return "invalid"
    names = sorted(
        {s.name.value for s in operation.selection_set.selections if isinstance(s, FieldNode)}
    )
    return ",".join(names) or "fragments"


class GraphQLMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context
        if context.pre_execution_errors or context.graphql_document is None:
            GRAPHQL_OPERATIONS.labels("unknown", "invalid", "error").inc()
            return
        kind = context.operation_type.value
        operation = operation_label(context.graphql_document, context.operation_name)
        errors = getattr(context.result, "errors", None)
        GRAPHQL_OPERATIONS.labels(kind, operation, "error" if errors else "ok").inc()
        if kind != "subscription":  # a subscription lasts as long as its client stays
            GRAPHQL_SECONDS.labels(kind, operation).observe(time.perf_counter() - started)


class RegistrationMetrics:
    """Counts register outcomes per section (rule refusals included) and drop outcomes."""

    def registered(self, answer: RegisterAnswer) -> None:
        for result in answer.results:
            REGISTER_OUTCOMES.labels(result.outcome.value, result.reason or "").inc()

    def dropped(self, outcome: DropOutcome | None) -> None:
        DROP_OUTCOMES.labels("NOT_FOUND" if outcome is None else outcome.value).inc()


async def refresh(redis: RedisClient, keys: Keys, hub: RedisHub | None) -> None:
    """Set the gauges read from Redis and from this process's pub/sub hub."""
    pipe = redis.pipeline(transaction=False)
    for shard in range(keys.shards):
        pipe.xlen(keys.stream(shard))
        pipe.xpending(keys.stream(shard), CONSUMER_GROUP)
        pipe.xrange(keys.stream(shard), count=1)
        pipe.xlen(keys.dead_letters(shard))
    pipe.get(keys.recovery)
    replies = await pipe.execute(raise_on_error=False)
    now_ms = time.time() * 1000
    for shard in range(keys.shards):
        length, pending, oldest, dead = replies[4 * shard : 4 * shard + 4]
        label = str(shard)
        STREAM_UNAPPLIED.labels(label).set(_number(length))
        STREAM_PENDING.labels(label).set(
            _number(pending.get("pending")) if isinstance(pending, dict) else 0
        )
        first = oldest[0][0] if isinstance(oldest, list) and oldest else None
        age = (now_ms - int(str(first).split("-")[0])) / 1000 if first else 0.0
        STREAM_AGE.labels(label).set(max(age, 0.0))
        DEAD_LETTERS.labels(label).set(_number(dead))
    report = replies[-1]
    if isinstance(report, str):
        found = json.loads(report)
        REBUILD_SECONDS.set(float(found.get("seconds", 0)))
        REBUILD_SECTIONS.set(int(found.get("sections", 0)))
    if hub is not None:
        LIVE_LISTENERS.set(hub.listener_count)
        LIVE_CHANNELS.set(hub.channel_count)


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float | str) else 0.0


async def scrape(request: Request) -> Response:
    """/metrics: the registry in Prometheus's text format. With Redis away the gauges keep
    their last values and the counters still come out."""
    container = request.app.state.container
    try:
        refreshed = refresh(container.redis, container.keys, container.hub)
        await asyncio.wait_for(refreshed, SCRAPE_TIMEOUT)
    except Exception as exc:
        logging.getLogger(__name__).warning("metrics: reading Redis failed: %s", exc)
    try:
        record_backlog(await asyncio.wait_for(container.outbox.counts(), SCRAPE_TIMEOUT))
    except Exception as exc:
        logging.getLogger(__name__).warning("metrics: reading the outbox failed: %s", exc)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
