"""The virtual-time event loop: time jumps when idle, real work holds it."""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from zse.sim import PacedLoop, VirtualClockLoop, run


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


async def test_a_lent_hold_lets_the_loops_own_work_run_virtual_time() -> None:
    """``external_work_lent``: inside an ``external_work`` hold (a client in this loop waiting
    on a server in this loop), the server's own waits may move virtual time; the hold is
    back afterwards, and lending with no hold is refused."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    with pytest.raises(RuntimeError, match="no external work"), loop.external_work_lent():
        pass
    start = loop.time()
    with loop.external_work():
        with loop.external_work_lent():
            await asyncio.sleep(6.4)  # would wait for real I/O for ever while held
        assert loop.time() - start == pytest.approx(6.4)
        timer = asyncio.ensure_future(asyncio.sleep(1.0))
        await asyncio.to_thread(time.sleep, 0.01)  # held again: the timer waits
        assert not timer.done()
    await timer


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


class _Recording(ThreadPoolExecutor):
    """A thread pool that keeps the futures of the work submitted to it."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted: list[Future[str]] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        work = super().submit(fn, *args, **kwargs)
        self.submitted.append(work)
        return work


async def test_executor_results_reach_the_loop_in_the_order_the_work_was_submitted() -> None:
    """The first job ends only after the second has (its thread waits for it): its result
    still reaches the loop first, once the loop is idle, so which thread finished first
    (CBKE arithmetic for two devices, say) does not reorder what the loop does next."""
    loop = asyncio.get_running_loop()
    second_done = threading.Event()
    resumed: list[str] = []

    async def job(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        result = await loop.run_in_executor(executor, fn)
        resumed.append(result)

    with _Recording() as executor:

        def first() -> str:
            assert second_done.wait(30)
            return "first"

        one = asyncio.ensure_future(job("first", first))
        await asyncio.sleep(0)  # the first job is submitted
        two = asyncio.ensure_future(job("second", lambda: "second"))
        await asyncio.sleep(0)
        executor.submitted[1].add_done_callback(lambda _: second_done.set())
        start = loop.time()
        await asyncio.gather(one, two)
    assert resumed == ["first", "second"]
    assert loop.time() == start


async def test_a_cancelled_executor_wait_does_not_hold_back_later_results() -> None:
    loop = asyncio.get_running_loop()
    release = threading.Event()
    with _Recording() as executor:
        stuck = loop.run_in_executor(executor, release.wait, 30)
        stuck.cancel()  # the thread runs on; nobody awaits its result any more
        assert await loop.run_in_executor(executor, lambda: 42) == 42
        assert not executor.submitted[0].done()  # handed over while the older job still ran
        release.set()
    with pytest.raises(asyncio.CancelledError):
        await stuck


async def test_an_executor_result_is_handed_over_while_sockets_stay_busy() -> None:
    """A socket with data at every look (a busy MQTT link of ``zse sim utility``) does not
    hold an executor result back: it is handed over once nothing else is ready at the current
    instant, socket events or not (the ping-pong gives up after a bound, so the old rule, which
    waited for a look with no socket event at all, fails instead of hanging)."""
    import socket  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    bounces = 0
    result: list[int] = []

    def bounce() -> None:
        nonlocal bounces
        a.recv(1)
        bounces += 1
        if bounces < 20_000 and not result:
            b.send(b"x")  # readable again at the next look

    loop.add_reader(a.fileno(), bounce)
    try:
        b.send(b"x")
        result.append(await loop.run_in_executor(None, lambda: 42))
        assert bounces < 20_000, "the result waited for the sockets to go quiet"
    finally:
        loop.remove_reader(a.fileno())
        a.close()
        b.close()


def test_run_helper_starts_at_given_time() -> None:
    async def main() -> float:
        await asyncio.sleep(5)
        return asyncio.get_running_loop().time()

    assert run(main(), start=100.0) == pytest.approx(105.0)


class _SignallingLoop(VirtualClockLoop):
    """Sets ``moved`` whenever the virtual clock advances."""

    def __init__(self, moved: threading.Event) -> None:
        super().__init__()
        self.moved = moved

    def _advance(self, seconds: float) -> None:
        super()._advance(seconds)
        self.moved.set()


def test_the_executor_shutdown_timeout_is_real_time() -> None:
    """Issue #12.7: asyncio.Runner joins the default executor's threads under a 300-s timeout,
    a loop timer since Python 3.13. An executor thread still busy at the end (here: until the
    clock moves) must be given real time, not have the timeout expire at the first idle poll
    ("RuntimeWarning: The executor did not finishing joining its threads")."""
    moved = threading.Event()
    executor = ThreadPoolExecutor(max_workers=1)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(executor)
        loop.call_later(3600, lambda: None)  # a timer still pending at the end (any Python)
        moved.clear()
        executor.submit(moved.wait)  # outside run_in_executor: nothing holds the clock

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with asyncio.Runner(loop_factory=lambda: _SignallingLoop(moved)) as runner:
            runner.run(main())
    assert moved.is_set()


async def test_real_time_lets_the_clock_follow_the_real_one() -> None:
    """Inside ``real_time()`` (``zse esi --radio sim`` waiting for the operator) a timer takes
    its time for real; outside, the clock jumps again."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualClockLoop)
    start, began = loop.time(), time.monotonic()
    with loop.real_time():
        await asyncio.sleep(0.05)
    assert time.monotonic() - began >= 0.05
    assert loop.time() - start == pytest.approx(time.monotonic() - began, abs=0.05)
    began = time.monotonic()
    await asyncio.sleep(3600)
    assert time.monotonic() - began < 1.0


def test_a_paced_loop_runs_speed_times_the_real_clock_and_real_time_resets_the_pace() -> None:
    """`PacedLoop(speed)` (`zse mqtt --sim --speed`): a minute at 6,000x is a hundredth of a
    real second; inside `real_time()` the pace is the real one, the clock never jumps back."""

    async def main() -> tuple[float, float, float, float]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, PacedLoop)
        began, start = time.monotonic(), loop.time()
        await asyncio.sleep(60)
        real = time.monotonic() - began
        with loop.real_time():
            inside = loop.speed
            before = loop.time()
        return real, loop.time() - start, inside, loop.time() - before

    with asyncio.Runner(loop_factory=lambda: PacedLoop(6000.0)) as runner:
        real, virtual, inside, after = runner.run(main())
    assert virtual >= 60
    assert 0.005 <= real < 5  # 0.01 s at this pace; bounded for a loaded machine
    assert inside == 1.0
    assert after >= 0
