"""What the tests read back from Redis, typed as the app's client answers it: strings
(decode_responses), where redis-py's annotations allow bytes and None for every mode."""

from __future__ import annotations

from infrastructure.redis.client import RedisClient


async def read_stream(redis: RedisClient, stream: str) -> list[tuple[str, dict[str, str]]]:
    """The whole stream, oldest first: (id, fields) per entry."""
    entries = await redis.xrange(stream)
    return [(str(i), {str(k): str(v) for k, v in (f or {}).items()}) for i, f in entries or []]
