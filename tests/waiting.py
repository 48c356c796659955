"""Waiting for a state, not for a guess of time: a test that waits on the condition it needs
passes as soon as it holds and fails with what it waited for, on a fast or a busy machine."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

Condition = Callable[[], bool | Awaitable[bool]]


async def wait_until(
    condition: Condition, timeout: float, what: str, interval: float = 0.01
) -> None:
    """Return once `condition()` (plain or awaited) is true; fail after `timeout` seconds
    saying `what` was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _holds(condition()):
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(interval)


async def _holds(result: bool | Awaitable[bool]) -> bool:
    return bool(await result) if inspect.isawaitable(result) else bool(result)
