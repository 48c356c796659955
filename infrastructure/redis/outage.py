"""Redis away (restarting, loading its AOF, unreachable): the adapters answer UNAVAILABLE, as
a lost database does (postgres/database.py), instead of an internal error and a 500.

The pool retries a command a few times first (container.make_redis), so a connection that
went stale across a Redis restart costs a reconnect, not an error."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.errors import Unavailable

REDIS_DOWN: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError)
C = TypeVar("C", bound=type)


def _translated(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except REDIS_DOWN as exc:
            raise Unavailable("live seat state is unavailable; try again shortly") from exc

    return call


def unavailable_when_down(cls: C) -> C:
    """Class decorator for an adapter: its public coroutine methods raise Unavailable when
    Redis cannot be reached (a subclass's overrides calling super() are covered too)."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls
