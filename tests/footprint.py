"""What a request leaves behind in Redis and Postgres, to prove a refused one left nothing;
and what a refusal's body must not show a client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from tests.conftest import Api
from tests.stored import read_stream

TABLES = (
    "students",
    "courses",
    "semesters",
    "sections",
    "registrations",
    "waitlist",
    "course_prerequisites",
    "completed_courses",
    "holds",
    "time_tickets",
    "section_meetings",
    "section_links",
)
# Signs of a leaked stack trace or of the internals behind an answer.
INTERNALS = (
    "Traceback",
    'File "',
    ".py",
    "sqlalchemy",
    "asyncpg",
    "redis",
    ".lua",
    "IntegrityError",
    "DataError",
    "violates",
    "Internal error",
)


@dataclass(frozen=True)
class Footprint:
    redis: dict[str, Any]
    postgres: dict[str, list[tuple[Any, ...]]]


async def _redis_value(api: Api, key: str) -> Any:
    redis = api.container.redis
    kind = await redis.type(key)
    if kind == "string":
        return await redis.get(key)
    if kind == "hash":
        return await redis.hgetall(key)
    if kind == "set":
        return sorted(await redis.smembers(key))
    if kind == "zset":
        return await redis.zrange(key, 0, -1, withscores=True)
    if kind == "stream":
        # A refusal is logged (the attempts log, contract/rules.graphql): not a change.
        entries = await read_stream(redis, key)
        return sum(1 for _, fields in entries if fields.get("k") != "attempt")
    return kind


def redis_keys(redis: Any, pattern: str) -> Any:
    """SCAN in large steps: a shared test Redis may hold far more keys than this run's."""
    return redis.scan_iter(match=pattern, count=10_000)


async def footprint(api: Api) -> Footprint:
    """Every key of the test's key space (streams by length) and every catalog row."""
    prefix = api.container.keys.prefix
    keys = sorted([k async for k in redis_keys(api.container.redis, f"{prefix}*")])
    # A refusal's log entry is marked once per operation (append.lua): part of the log.
    logged = [k for k in keys if k.endswith(":log")]
    # The rate limits' buckets are the limiter's own bookkeeping, not state a request
    # changes: a refused request spends no token, but the bucket's refill stamp moves.
    logged += [k for k in keys if k.endswith(":rate") or k.startswith(f"{prefix}rate:")]
    live = {
        k: await _redis_value(api, k)
        for k in keys
        if not k.endswith(":recovery") and k not in logged
    }
    connection = await asyncpg.connect(api.container.settings.database_url)
    try:
        rows = {
            t: [tuple(r) for r in await connection.fetch(f"SELECT * FROM {t} ORDER BY 1")]
            for t in TABLES
        }
    finally:
        await connection.close()
    return Footprint(live, rows)


def assert_no_internals(text: str) -> None:
    leaked = [marker for marker in INTERNALS if marker.lower() in text.lower()]
    assert not leaked, f"the body shows {leaked}: {text[:500]}"


def error_code(body: dict[str, Any]) -> str:
    """The code of the one GraphQL error in a response body."""
    errors = body.get("errors")
    assert errors, f"expected a GraphQL error, got {body}"
    return str(errors[0]["extensions"]["code"])
