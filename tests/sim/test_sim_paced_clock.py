"""The paced clock of ``zse mqtt --sim`` / ``zse headend --sim`` (:class:`~zse.sim.PacedLoop`)
on a busy machine: time never leaps past a due timer, and the pace over a run stays ``speed``.

Each test runs the loop on a real clock of its own (``monotonic``, ``sleep``), which moves only
when the loop waits or when a callback says it worked for so long: the same run every time,
and no real sleep.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from zse.sim import PacedLoop

_T = TypeVar("_T")

#: ``zse mqtt --sim --speed 600``: a zigpy request's 5 s timeout is 8 ms of real time.
SPEED = 600.0


class RealClock:
    """A real clock for a :class:`PacedLoop`: idle waits pass on it at once, and a callback's
    work takes what it says (:meth:`work`)."""

    def __init__(self) -> None:
        self.now = 1000.0
        #: real seconds the process wakes late from each idle wait (waiting for the CPU)
        self.late = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + self.late

    def work(self, seconds: float) -> None:
        """The callback running now takes ``seconds`` of real time."""
        self.now += seconds


def run_paced(real: RealClock, main: Callable[[PacedLoop], Awaitable[_T]]) -> _T:
    loop = PacedLoop(SPEED, monotonic=real.monotonic, sleep=real.sleep)

    async def entry() -> _T:
        return await main(loop)

    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(entry())


def test_a_busy_spell_does_not_expire_a_timeout_before_the_answer_queued_in_it() -> None:
    """5 real seconds of work (3,000 s at 600x) move the clock 5 s: the answer, 10 ms of air
    after the work, comes before the request's 30 s timeout (which expired at once before)."""
    real = RealClock()

    async def main(loop: PacedLoop) -> tuple[list[str], float]:
        order: list[str] = []
        loop.call_later(30, order.append, "timeout")
        start = loop.time()

        def busy() -> None:
            real.work(5.0)
            order.append(f"worked {loop.time() - start:.2f} s")
            loop.call_later(0.01, order.append, "answer")

        loop.call_soon(busy)
        await asyncio.sleep(60)
        return order, loop.time() - start

    order, elapsed = run_paced(real, main)
    assert order == ["worked 5.00 s", "answer", "timeout"]
    assert elapsed == pytest.approx(60)


def test_a_process_waking_late_does_not_leap_past_the_timer_it_waited_for() -> None:
    """Each idle wait ends 2 real seconds late (the CPU was another process's): the clock
    moves to the timer waited for, and the lateness at the real pace, not at 600x."""
    real = RealClock()
    real.late = 2.0

    async def main(loop: PacedLoop) -> tuple[list[str], float]:
        order: list[str] = []
        start = loop.time()

        def request_sent() -> None:
            loop.call_later(0.01, order.append, "answer")  # 10 ms of air away

        loop.call_later(10, request_sent)
        loop.call_later(30, order.append, "timeout")
        await asyncio.sleep(60)
        return order, loop.time() - start

    order, elapsed = run_paced(real, main)
    assert order == ["answer", "timeout"]
    assert 60 <= elapsed < 60 + 5 * 2.0  # a few waits, each 2 s late at the real pace


def test_executor_work_is_work_the_clock_keeps_the_real_pace_meanwhile() -> None:
    """CBKE's arithmetic on the executor's thread: while the loop awaits it, a 30 s timeout
    takes 30 real seconds, not 50 ms."""
    real = RealClock()
    release = threading.Event()

    async def main(loop: PacedLoop) -> tuple[float, float]:
        began = real.now
        fired: list[float] = []

        def timeout() -> None:
            fired.append(real.now - began)
            release.set()

        loop.call_later(30, timeout)
        with ThreadPoolExecutor(1) as pool:
            await loop.run_in_executor(pool, release.wait)
        free = real.now
        await asyncio.sleep(60)  # nothing awaited any more: 600x again (and time made up)
        return fired[0], real.now - free

    in_work, idle = run_paced(real, main)
    assert in_work == pytest.approx(30, abs=0.001)  # the clock reaches a timer 1 ms early
    assert idle <= 60 / SPEED


def test_time_lost_working_is_made_up_while_idle_at_one_and_a_half_times_the_speed() -> None:
    """10 real seconds of work move the clock 10 s; idle after, it runs at most 1.5 times
    600x until it is back on pace: over the run the pace is 600x; inside ``real_time()`` it
    is the real one, with nothing made up."""
    real = RealClock()

    async def main(loop: PacedLoop) -> tuple[float, list[tuple[float, float]], float]:
        real_start, start = real.now, loop.time()
        real.work(10.0)
        busy = loop.time() - start
        with loop.real_time():  # behind by 5,990 s, yet at the real pace
            before = real.now
            await asyncio.sleep(5)
            inside = real.now - before
        samples: list[tuple[float, float]] = []
        for _ in range(60):
            await asyncio.sleep(600)
            samples.append((real.now - real_start, loop.time() - start))
        return busy, samples, inside

    busy, samples, inside = run_paced(real, main)
    assert busy == pytest.approx(10.0)
    assert inside == pytest.approx(5.0, abs=0.001)
    starts = [(0.0, 0.0), *samples[:-1]]
    paces = [(v1 - v0) / (r1 - r0) for (r0, v0), (r1, v1) in zip(starts, samples, strict=True)]
    lead = 1.5 * SPEED * 0.001  # a timer is reached up to a millisecond's pace early
    assert max(paces) <= (600 * 1.5 * SPEED + lead) / 600
    assert min(paces[1:]) >= (600 * SPEED - lead) / 600
    real_total, virtual_total = samples[-1]  # the 5 s at the real pace left out
    assert (virtual_total - 5) / (real_total - 5) == pytest.approx(SPEED, rel=1e-4)
