"""The virtual-time event loop: time jumps when idle, real work holds it."""

from __future__ import annotations

import asyncio

import pytest

from zse.sim import VirtualClockLoop, run


async def test_sleep_and_timeouts_are_virtual() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    start = loop.time()
    await asyncio.sleep(3600)  # an hour: a real loop would time the suite out
    assert loop.time() - start == pytest.approx(3600)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(8):
            await asyncio.sleep(10)
    assert loop.time() - start == pytest.approx(3608)


async def test_executor_work_holds_the_clock() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    timer = asyncio.ensure_future(asyncio.sleep(1.0))
    # Real work in a thread (tens of milliseconds of arithmetic): the 1-s virtual timer must
    # not fire while it runs.
    result = await loop.run_in_executor(None, lambda: sum(range(2_000_000)))
    assert result == 1_999_999_000_000
    assert not timer.done()
    assert loop.time() == start
    await timer
    assert loop.time() == pytest.approx(start + 1.0)


def test_run_helper_starts_at_given_time() -> None:
    async def main() -> float:
        await asyncio.sleep(5)
        return asyncio.get_running_loop().time()

    assert run(main(), start=100.0) == pytest.approx(105.0)
