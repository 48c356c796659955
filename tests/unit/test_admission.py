"""Admission control's bookkeeping (infrastructure/http/admission.py) on a real event loop:
the lanes, the queue's order and deadline, and the limit's AIMD on the loop's lag. The
refusals over HTTP: tests/integration/test_overload.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from collections.abc import AsyncIterator

import pytest

from infrastructure.http.admission import Admission, AdmissionSettings, Busy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(**settings: float) -> tuple[Admission, Clock]:
    clock = Clock()
    base = AdmissionSettings(limit=4, min_limit=2, queue=2, wait_seconds=10.0, lag_seconds=0.05)
    return Admission(replace(base, **settings), clock=clock), clock


@contextlib.asynccontextmanager
async def running(admission: Admission, staff: bool = False) -> AsyncIterator[asyncio.Event]:
    """A request admitted and running until the event it yields is set."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def request() -> None:
        async with admission.admitted(lambda: staff):
            entered.set()
            await release.wait()

    task = asyncio.create_task(request())
    await asyncio.wait_for(entered.wait(), 5)
    try:
        yield release
    finally:
        release.set()
        await task


async def test_the_limit_full_queues_in_order_then_refuses_the_queue_full() -> None:
    admission, _ = gate(limit=1, queue=2)
    order: list[str] = []

    async def queued(name: str) -> None:
        async with admission.admitted(lambda: False):
            order.append(name)

    async with running(admission) as release:
        first, second = asyncio.create_task(queued("first")), asyncio.create_task(queued("second"))
        while len(admission._queue) < 2:
            await asyncio.sleep(0)
        with pytest.raises(Busy) as refused:
            async with admission.admitted(lambda: False):
                pass
        assert refused.value.reason == "queue"
        assert admission.in_flight == 1
        release.set()
        await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert admission.in_flight == 0 and not admission._queue


async def test_a_wait_predicted_past_the_deadline_is_refused_without_queueing() -> None:
    admission, _ = gate(limit=1, queue=10, wait_seconds=0.05)
    admission.service_seconds = 0.2  # one request ahead is already 0.2 s
    async with running(admission):
        with pytest.raises(Busy) as refused:
            async with admission.admitted(lambda: False):
                pass
    assert refused.value.reason == "wait"
    assert not admission._queue


async def test_staff_have_their_own_lane_when_the_main_one_is_full() -> None:
    admission, _ = gate(limit=1, queue=0, staff_limit=1)
    async with running(admission), running(admission, staff=True):
        assert admission.in_flight == admission.staff_in_flight == 1
        with pytest.raises(Busy) as refused:  # both lanes full: the main queue's bound
            async with admission.admitted(lambda: True):
                pass
        assert refused.value.reason == "queue"
    assert admission.in_flight == admission.staff_in_flight == 0


async def test_lag_cuts_the_limit_once_an_interval_and_low_lag_in_use_grows_it_back() -> None:
    admission, clock = gate(limit=16, min_limit=4)
    admission.observe_lag(0.2)
    assert admission.limit == 12
    admission.observe_lag(0.2)  # the same interval: no second cut
    assert admission.limit == 12
    for _ in range(10):
        clock.now += 0.1
        admission.observe_lag(0.2)
    assert admission.limit == 4, "never below the minimum"
    admission.observe_lag(0.001)
    assert admission.limit == 4, "not grown while nobody reached it"
    admission.busy_seen = True
    admission.observe_lag(0.001)
    assert admission.limit == 5


async def test_the_sampler_sees_the_event_loop_blocked() -> None:
    admission, _ = gate()
    task = asyncio.create_task(admission.sample_lag(period=0.01))
    await asyncio.sleep(0.05)
    time.sleep(0.3)  # the loop is blocked, as a saturated one is
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert admission.limit < 4, "the lag cut the limit"
