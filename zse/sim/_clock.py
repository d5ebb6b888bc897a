"""A virtual-time asyncio event loop: simulated seconds pass only when nothing is runnable.

:class:`VirtualClockLoop` is an ordinary selector event loop whose :meth:`~VirtualClockLoop.time`
is a virtual clock. When the loop would block waiting for its next timer (``asyncio.sleep``,
``call_later``, the timeouts inside zigpy's requests), it first polls real I/O without waiting and,
if nothing is ready, jumps the virtual clock straight to that timer. A simulation of hours runs in
milliseconds, and runs the same way every time: the order of events depends only on the program.

Work done outside the loop (threads, subprocesses) must not be overtaken by virtual time. Futures
from :meth:`~VirtualClockLoop.run_in_executor` are tracked automatically; wrap any other such wait
in :meth:`~VirtualClockLoop.external_work`. While such work is pending the loop waits in real time
and the virtual clock stands still.

The result of :meth:`~VirtualClockLoop.run_in_executor` work is handed to the loop in the
order the work was submitted, each when the loop has nothing left to do at the current virtual
instant: where it lands in the loop's work depends on the program, not on which thread finished
first (CBKE arithmetic for several devices at once). Other threads' answers (aiosqlite's, a
thread wrapped in ``external_work``) are still taken wherever the loop is in its work when the
thread finishes, which is the machine's timing, not the program's. So by default
(``inline_io``) a :mod:`zse.store` on this loop runs its SQLite statements on the loop's own
thread: a simulation with stores, such as ``zse demo``, writes the same capture for the same
seed on any machine under any load.

A network peer's real-time duty (an MQTT client's keepalive: the broker drops a client silent
for 1.5 keepalive periods of *its* clock) cannot wait for virtual time, which stands still while
the loop is busy: :meth:`~VirtualClockLoop.call_real_later` runs a callback after real seconds,
checked at every turn of the loop, busy or not.

At the very end, while :meth:`~VirtualClockLoop.shutdown_default_executor` joins the executor's
threads, the virtual clock follows the real one: the join's timeout (300 s in ``asyncio.run``) is
a timer on the loop since Python 3.13, and a clock that jumped would expire it at once.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import heapq
import itertools
import math
import selectors
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

__all__ = ["InlineExecutor", "PacedLoop", "VirtualClockLoop", "run"]

_T = TypeVar("_T")
_REAL_POLL = 0.05


class InlineExecutor(concurrent.futures.Executor):
    """Runs each job at once on the loop's thread (CBKE arithmetic, say): the frames' order,
    and so a capture, then depends on nothing but the seed, and no virtual time passes
    while it works (``zse demo``, the simulated utility's workers: one process, one core)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the awaiting side
            future.set_exception(exc)
        return future


class _VirtualSelector(selectors.DefaultSelector):
    """The platform selector, except that an idle wait advances the virtual clock instead."""

    loop: VirtualClockLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events: list[tuple[selectors.SelectorKey, int]] = super().select(0)
        moved, real = self.loop._real_due()
        # work to do at this instant: no wait, the clock stays; with nothing else ready now,
        # the oldest executor result is handed over, socket events or not (a socket busy at
        # every look, a utility's MQTT links, must not hold it back)
        if moved or (timeout is not None and timeout <= 0) or self.loop._hand_over() or events:
            return events
        if real is not None and (self.loop._real_time or timeout is None):
            # a real-time callback is due in ``real`` seconds: wait no longer than that
            speed = self.loop._speed if self.loop._real_time else 1.0
            wait = real if timeout is None else min(timeout / speed, real)
            began = time.monotonic()
            events = super().select(min(wait, _REAL_POLL))
            if self.loop._real_time:
                self.loop._advance((time.monotonic() - began) * speed)
            return events
        if timeout is None:
            # Nothing scheduled at all: only real I/O (a thread, a socket) can wake us.
            return list(super().select(None))
        if self.loop._real_time:
            speed = self.loop._speed
            began = time.monotonic()
            events = super().select(min(timeout / speed, _REAL_POLL))
            self.loop._advance((time.monotonic() - began) * speed)
            return events
        if self.loop._external_pending:
            return list(super().select(min(timeout, _REAL_POLL)))
        self.loop._advance(timeout)
        return []


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time, starting at ``start`` seconds (default 0).

    ``inline_io`` (default True): the stores opened on this loop run their SQLite statements on
    its own thread, so the order of events depends only on the program; False gives them
    aiosqlite's thread as on any loop, where commits made while one is being written are
    grouped into the next (throughput, for a simulated utility's workers; the order of events
    then depends on timing too).
    """

    def __init__(self, start: float = 0.0, *, inline_io: bool = True) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        #: Whether database work runs on this loop's own thread (read by :mod:`zse.store_sqlite`).
        self.inline_io = inline_io
        self._virtual_now = float(start)
        self._external_pending = 0
        self._real_time = False
        self._speed = 1.0
        self._real_timers: list[tuple[float, int, asyncio.TimerHandle]] = []
        self._real_order = itertools.count()
        # run_in_executor work not yet handed over, oldest first (see _hand_over)
        self._handovers: collections.deque[
            tuple[concurrent.futures.Future[Any], asyncio.Future[Any]]
        ] = collections.deque()

    def time(self) -> float:
        """The virtual time in seconds."""
        return self._virtual_now

    def _advance(self, seconds: float) -> None:
        self._virtual_now += seconds

    def call_real_later(
        self, delay: float, callback: Callable[..., object], *args: Any
    ) -> asyncio.TimerHandle:
        """Call ``callback(*args)`` after ``delay`` *real* seconds, whatever the virtual clock
        does and however busy the loop is (it is checked at every turn); the handle cancels
        it. For real-time duties towards real peers (an MQTT client's keepalive), not for the
        simulation, whose order it would make depend on the machine's speed."""
        when = time.monotonic() + delay
        handle = asyncio.TimerHandle(when, callback, args, self)
        heapq.heappush(self._real_timers, (when, next(self._real_order), handle))
        return handle

    def _real_due(self) -> tuple[bool, float | None]:
        """Move the real-time callbacks now due to the ready queue: whether any was, and the
        real seconds until the next (None: none)."""
        timers = self._real_timers
        now = time.monotonic()
        moved = False
        while timers and (timers[0][2].cancelled() or timers[0][0] <= now):
            _, _, handle = heapq.heappop(timers)
            if not handle.cancelled():
                self._ready.append(handle)  # type: ignore[attr-defined]
                moved = True
        return moved, (timers[0][0] - now if timers else None)

    @contextlib.contextmanager
    def external_work(self) -> Iterator[None]:
        """Hold the virtual clock while awaiting work done outside the loop (e.g. a thread)."""
        self._external_pending += 1
        try:
            yield
        finally:
            self._external_pending -= 1

    @contextlib.contextmanager
    def external_work_lent(self) -> Iterator[None]:
        """Give one :meth:`external_work` hold back for a while: inside it, work of this
        loop's own that a hold is waiting for (a server answering a request whose client, in
        the same loop, holds the clock) may let virtual time run. :class:`RuntimeError` when
        nothing holds the clock."""
        if self._external_pending <= 0:
            raise RuntimeError("no external work holds the virtual clock")
        self._external_pending -= 1
        try:
            yield
        finally:
            self._external_pending += 1

    @property
    def follows_real_time(self) -> bool:
        """Whether the clock follows the real one now (inside :meth:`real_time`)."""
        return self._real_time

    @contextlib.contextmanager
    def real_time(self, speed: float = 1.0) -> Iterator[None]:
        """Let the virtual clock follow the real one (e.g. while a person types a command),
        ``speed`` times as fast (a simulated utility, ``zse sim utility --speed``). Only idle
        waits count: time the loop spends working does not move the clock, so a busy loop
        never sees its timers expire early."""
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed}")
        before = self._real_time, self._speed
        self._real_time, self._speed = True, float(speed)
        try:
            yield
        finally:
            self._real_time, self._speed = before

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """As :meth:`asyncio.loop.shutdown_default_executor`, ``timeout`` in real seconds: the
        virtual clock follows the real one while the executor's threads are joined."""
        with self.real_time():
            if sys.version_info >= (3, 12):
                await super().shutdown_default_executor(timeout)
            else:  # no timeout before 3.12
                await super().shutdown_default_executor()

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """As :meth:`asyncio.loop.run_in_executor`; virtual time waits for the result, and
        results are handed over in the order the work was submitted, each once the loop has
        nothing else to do at the current virtual instant (work that ends at once, on an
        :class:`InlineExecutor`, is handed over at once, as asyncio does). A job that waits
        for a later job's result to reach the loop would wait for ever."""
        self._check_closed()  # type: ignore[attr-defined]
        if executor is None:
            self._check_default_executor()  # type: ignore[attr-defined]
            executor = self._default_executor  # type: ignore[has-type]
            if executor is None:
                executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio")
                self._default_executor = executor
        work = executor.submit(func, *args)
        future: asyncio.Future[_T]
        if isinstance(executor, InlineExecutor):  # done already: a thread pool's may be too,
            future = asyncio.wrap_future(work, loop=self)  # by chance, so no test of done()
        else:
            future = self.create_future()
            self._handovers.append((work, future))
            work.add_done_callback(self._work_done)
        self._external_pending += 1

        def _done(done: asyncio.Future[_T]) -> None:
            self._external_pending -= 1
            if done.cancelled():
                work.cancel()  # not started yet: never runs

        future.add_done_callback(_done)
        return future

    def _work_done(self, _: concurrent.futures.Future[Any]) -> None:
        """A thread finished executor work: wake the loop if it waits (any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self._write_to_self()  # type: ignore[attr-defined]

    def _hand_over(self) -> bool:
        """At an idle moment: hand the oldest executor result to its awaiting future if its
        work is done (whether one was), forgetting work nobody awaits any more."""
        handovers = self._handovers
        while handovers and handovers[0][1].done():  # cancelled by the awaiting side
            handovers.popleft()
        if not handovers or not handovers[0][0].done():
            return False
        work, future = handovers.popleft()
        self.call_soon(_settle, work, future)
        return True


def _settle(work: concurrent.futures.Future[_T], future: asyncio.Future[_T]) -> None:
    """Give ``future`` the outcome of the executor's ``work`` (unless it was cancelled)."""
    if future.done():
        return
    if work.cancelled():
        future.cancel()
        return
    exc = work.exception()
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(work.result())


#: How much faster than its speed an idle :class:`PacedLoop` runs while it makes up the time
#: it lost working: half as fast again at most.
_CATCH_UP = 1.5
#: Real seconds a selector's wait may end late by rounding (epoll and poll count milliseconds).
_GRAIN = 0.001


class _PacedSelector(selectors.DefaultSelector):
    """The platform selector, whose waits are the :class:`PacedLoop`'s idle time."""

    loop: PacedLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        began, wait = loop._idle_wait(timeout)
        if loop._sleep is None:
            events = list(super().select(wait))
        else:  # a test's clock: poll, then let its time pass
            events = list(super().select(0 if wait is not None else None))
            if not events and wait:
                loop._sleep(wait)
        loop._idled(timeout, began, wait)
        return events


class PacedLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock runs ``speed`` times the real one while it waits (``zse mqtt
    --sim --speed``, ``zse headend --sim``): unlike :class:`VirtualClockLoop` it never jumps
    far, so real peers (a broker, a browser) see a steady pace; :meth:`real_time` sets it back
    to the real pace while waiting for the broker.

    The timeouts inside the simulation (zigpy's 5 s and 28 s replies, its ``const.py``;
    zse's retries, APS acknowledgements, Key Establishment's, SE C.3.1) are on this clock, so
    it never moves past a due timer:

    - while the loop works (its callbacks, the process waiting for the CPU, and work it awaits
      from :meth:`run_in_executor` or inside :meth:`external_work`), the clock keeps the real
      pace at most (``min(speed, 1)``): a request times out only after that many real seconds
      of work, and an answer already queued is handled first;
    - an idle wait runs at ``speed``, and ends at the timer it waits for, however late the
      process wakes. A wait shorter than the selector can wait (1 ms) is not waited: the
      clock moves to the timer, at most a millisecond's pace ahead, which later waits give
      back.

    The virtual time lost working is made up while idle, at 1.5 times ``speed`` at most, so
    the pace over a long run is ``speed`` while the loop works less than a third of the time
    (not inside :meth:`real_time`). The clock is never behind the real one (``speed``
    >= 1).

    ``monotonic`` and ``sleep`` are for tests: the real clock in seconds, and how an idle
    wait of that many real seconds passes on it (default: the selector waits, woken by I/O).
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
    ) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed}")
        selector = _PacedSelector()
        super().__init__(selector)
        selector.loop = self
        #: Virtual seconds per real second while idle (1 inside :meth:`real_time`).
        self.speed = float(speed)
        self._monotonic = monotonic
        self._sleep = sleep
        self._at = 0.0  # the virtual time at the real time _ref
        self._ref = monotonic()
        self._behind = 0.0  # virtual seconds the pace is behind ``speed``: made up while idle
        self._early = 0.0  # real seconds the clock is ahead of its pace: given back
        self._catch_up = True  # False inside real_time()
        self._pending = 0  # executor and external work awaited

    def time(self) -> float:
        """The virtual time in seconds."""
        return self._at + (self._monotonic() - self._ref) * min(self.speed, 1.0)

    def _count(
        self, real: float, idle: float = 0.0, paced: float = 0.0, moved: float | None = None
    ) -> None:
        """Move the clock to the real time ``real``: ``idle`` of the real seconds since it
        last moved were waited, moving the pace by ``paced`` and the clock by ``moved``
        (default: as much); the rest were worked, at ``min(speed, 1)``. What ``speed`` would
        have moved the pace more is owed."""
        worked = max(0.0, real - self._ref - idle) * min(self.speed, 1.0)
        moved = paced if moved is None else moved
        self._behind = max(0.0, self._behind + (real - self._ref) * self.speed - worked - paced)
        self._at += worked + moved
        self._ref = real

    def _paces(self) -> tuple[float, float, float]:
        """An idle wait's pace while it makes up lost time, for how many real seconds, and
        its pace after."""
        if self._pending:  # the loop's work is under way on another thread
            pace = min(self.speed, 1.0)
            return pace, 0.0, pace
        if not (self._catch_up and self._behind > 0):
            return self.speed, 0.0, self.speed
        fast = self.speed * _CATCH_UP
        return fast, self._behind / (fast - self.speed), self.speed

    def _idle_wait(self, timeout: float | None) -> tuple[float, float | None]:
        """The real time an idle wait begins, and its real length for a ``timeout`` in
        virtual seconds (None: until I/O): until the pace is within a millisecond of the
        timer."""
        began = self._monotonic()
        self._count(began)
        if timeout is None:
            return began, None
        fast, quick, slow = self._paces()
        need = max(0.0, timeout) + (self._early - _GRAIN) * fast
        if need <= 0:
            return began, 0.0
        if need <= fast * quick:
            return began, need / fast
        return began, quick + (need - fast * quick) / slow

    def _idled(self, timeout: float | None, began: float, wait: float | None) -> None:
        """An idle wait that began at ``began`` ended: the pace moves at the idle paces for
        the time waited (a millisecond late at most: later, the process worked), the clock
        with it and up to a millisecond's pace ahead, never past the timer waited for (a
        socket ready at every look, one with data to send, must not hold it back)."""
        real = self._monotonic()
        fast, quick, slow = self._paces()
        if wait is None:
            idle = max(0.0, real - began)
        else:
            idle = max(0.0, min(real - began, wait + _GRAIN))
        paced = fast * min(idle, quick) + slow * max(0.0, idle - quick)
        if timeout is None:
            self._count(real, idle, paced)
            return
        timeout, lead = max(0.0, timeout), self._early * fast
        paced = min(paced, timeout + lead)  # the pace never passes the timer either
        moved = max(0.0, min(timeout, paced - lead + fast * _GRAIN))
        self._early = max(0.0, lead + moved - paced) / fast
        self._count(real, idle, paced, moved)

    @contextlib.contextmanager
    def real_time(self) -> Iterator[None]:
        """The clock follows the real one (speed 1, no time made up): a wait for the broker."""
        self._count(self._monotonic())
        before = self.speed, self._catch_up
        self.speed, self._catch_up = 1.0, False
        try:
            yield
        finally:
            self._count(self._monotonic())
            self.speed, self._catch_up = before

    @contextlib.contextmanager
    def external_work(self) -> Iterator[None]:
        """The loop works while it awaits work done outside it (a store's thread): its clock
        keeps the real pace at most meanwhile (:func:`zse.store_engine.hold_virtual_clock`)."""
        self._pending += 1
        try:
            yield
        finally:
            self._pending -= 1

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """As :meth:`asyncio.loop.run_in_executor`; the loop works (its clock at the real pace
        at most) until the result is handed over (CBKE's arithmetic)."""
        future = super().run_in_executor(executor, func, *args)
        self._pending += 1
        future.add_done_callback(self._executor_done)
        return future

    def _executor_done(self, _: asyncio.Future[Any]) -> None:
        self._pending -= 1


def run(main: Coroutine[Any, Any, _T], *, start: float = 0.0, debug: bool = False) -> _T:
    """Run a coroutine to completion on a fresh :class:`VirtualClockLoop` (like ``asyncio.run``)."""
    with asyncio.Runner(debug=debug, loop_factory=lambda: VirtualClockLoop(start)) as runner:
        return runner.run(main)
