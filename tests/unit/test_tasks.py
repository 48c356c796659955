import asyncio

import pytest

from infrastructure.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancel_is_cancelled_again_until_it_ends() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:  # what redis-py sometimes does mid-command
                swallowed += 1
                if swallowed > 2:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait([task, None], grace=5)
    assert task.cancelled() and swallowed == 3


async def test_a_task_that_never_ends_is_left_after_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = False

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if stop:
                    raise

    task = asyncio.create_task(immortal(), name="immortal")
    await asyncio.sleep(0)
    await cancel_and_wait([task], grace=0.5)
    assert not task.done()
    assert "immortal did not stop" in caplog.text
    stop = True
    await cancel_and_wait([task], grace=5)
    assert task.cancelled()
