"""Admission control's bookkeeping (infrastructure/http/admission.py) on a real event loop:
the lanes, the queue's order and deadline, and the loop's lag that stops queueing. The
refusals over HTTP: tests/integration/test_overload.py."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from infrastructure.http.admission import Admission, AdmissionSettings, Busy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def gate(**settings: Any) -> tuple[Admission, Clock]:
    clock = Clock()
    base = AdmissionSettings(limit=4, queue=2, wait_seconds=10.0, lag_seconds=0.05)
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


async def test_a_lag_above_target_for_an_interval_refuses_instead_of_queueing() -> None:
    admission, clock = gate(limit=1, queue=5)
    admission.observe_lag(0.2)
    assert not admission.lagging, "one reading is no interval"
    clock.now += 0.15
    admission.observe_lag(0.2)
    assert admission.lagging
    async with running(admission):
        with pytest.raises(Busy) as refused:
            async with admission.admitted(lambda: False):
                pass
        assert refused.value.reason == "lag"
        assert not admission._queue
    async with admission.admitted(lambda: False):  # below the limit: admitted, lag or not
        assert admission.in_flight == 1
    admission.observe_lag(0.01)
    assert not admission.lagging


async def test_the_limit_follows_the_admitted_latency_to_its_target() -> None:
    admission, clock = gate(limit=100, min_limit=10, latency_seconds=0.3)
    admission.service_seconds = 0.6  # twice the target: half the requests in flight
    admission.adjust()
    assert admission.limit == 50
    admission.adjust()  # the same interval: unchanged
    assert admission.limit == 50
    for _ in range(5):
        clock.now += 0.15
        admission.service_seconds = 3.0  # scaled by at most a half per interval
        admission.adjust()
    assert admission.limit == 10, "never below the floor"
    clock.now += 0.15
    admission.service_seconds = 0.1
    admission.adjust()
    assert admission.limit == 10, "not raised while nobody found it full"
    admission.reached = True
    admission.adjust()
    assert admission.limit == 10, "the same interval"
    clock.now += 0.15
    admission.adjust()
    assert admission.limit == 11


async def test_a_raised_limit_lets_the_queue_in() -> None:
    admission, clock = gate(limit=4, min_limit=1, queue=5, latency_seconds=0.3)
    admission.service_seconds = 0.6
    admission.adjust()
    assert admission.limit == 2
    async with running(admission), running(admission):
        waiting = asyncio.create_task(queued_once(admission))
        while not admission._queue:
            await asyncio.sleep(0)
        admission.service_seconds = 0.1
        raised = 0
        while admission.limit == 2:  # 2 * 1.1**n, a third place at n = 5
            assert not waiting.done()
            clock.now += 0.15
            admission.reached = True
            admission.adjust()
            raised += 1
        assert raised == 5
        await asyncio.wait_for(waiting, 5)
        assert admission.in_flight == 2


async def queued_once(admission: Admission) -> None:
    async with admission.admitted(lambda: False):
        pass


async def test_the_sampler_sees_the_event_loop_blocked() -> None:
    admission = Admission(AdmissionSettings(lag_seconds=0.05))  # the real clock
    task = asyncio.create_task(admission.sample_lag(period=0.01))
    await asyncio.sleep(0.05)
    for _ in range(2):
        time.sleep(0.15)  # the loop is blocked, as a saturated one is
        await asyncio.sleep(0.005)  # the sampler, overdue, reads first
    assert admission.lag > 0.1
    assert admission.lagging
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
