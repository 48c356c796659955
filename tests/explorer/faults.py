"""Lost replies, injected where they happen: on the wire, inside redis-py.

A step of an action (scheduler.py) may run with a fault. LOST: the first round trip of the
step reaches Redis and runs, then the caller sees ConnectionError (the connection stayed
down through redis-py's retries); the adapter turns that into Unavailable as in production.
RESEND: the reply of the first round trip is lost once and redis-py's Retry re-sends the
same commands (a whole pipeline, as `client.py` notes), so they run twice and the caller
gets the second reply. Patching redis-py, not the adapters, keeps both faithful: a re-sent
begin.lua carries the same token, a re-sent pipeline the same scripts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pytest
from redis.asyncio.client import Pipeline, Redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Fault(StrEnum):
    NONE = ""
    LOST = "reply lost"
    RESEND = "re-sent"


@dataclass(slots=True)
class Slot:
    """The fault of the step running in this context; spent by its first round trip."""

    fault: Fault
    spent: bool = False


WIRE: ContextVar[Slot | None] = ContextVar("explorer_wire", default=None)


def _take(fault: Fault) -> bool:
    slot = WIRE.get()
    if slot is None or slot.spent or slot.fault is not fault:
        return False
    slot.spent = True
    return True


def _lost_after(original: Any) -> Any:
    """Outside redis-py's retry loop: run, then lose the reply for good."""

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _take(Fault.LOST):
            return await original(self, *args, **kwargs)
        await original(self, *args, **kwargs)
        raise RedisConnectionError("explorer: the reply was lost")

    return call


def _resent(original: Any) -> Any:
    """Inside redis-py's retry loop: run, lose the reply once; Retry sends it again."""

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _take(Fault.RESEND):
            return await original(self, *args, **kwargs)
        await original(self, *args, **kwargs)
        raise RedisConnectionError("explorer: the reply was lost; redis-py re-sends")

    return call


@contextlib.contextmanager
def faulty_wire() -> Iterator[None]:
    """redis-py as it is, except in a step given a fault (WIRE)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Redis, "execute_command", _lost_after(Redis.execute_command))
        patch.setattr(Pipeline, "execute", _lost_after(Pipeline.execute))
        for owner, name in (
            (Redis, "_send_command_parse_response"),
            (Pipeline, "_execute_pipeline"),
            (Pipeline, "_execute_transaction"),
        ):
            patch.setattr(owner, name, _resent(getattr(owner, name)))
        yield


def spent() -> bool:
    """Whether the running step's fault hit a round trip (a cached read makes none)."""
    slot = WIRE.get()
    return slot is not None and slot.spent
